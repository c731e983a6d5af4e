#include "server/security/tls_material.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace fusion::security {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// "--tls_cert /etc/tls/server.pem"
std::string Name(const TlsFiles& files, const char* suffix,
                 const std::string& path) {
  return absl::StrCat(files.flag_prefix, suffix, " ", path);
}

// OpenSSL's reason for the last failure, cleared from its thread queue.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  ERR_clear_error();
  return reason == nullptr ? "unknown error" : reason;
}

absl::StatusOr<std::string> ReadFile(const std::string& name,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(name, ": cannot read (", std::strerror(errno), ")"));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem`, in order. Text outside BEGIN/END blocks is
// skipped (as openssl does); a damaged block is an error.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(const std::string& name,
                                                       const std::string& pem) {
  ERR_clear_error();
  Bio bio = MemoryBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  // Reading stops with "no start line" at the end of the text; anything
  // else means a block that does not parse.
  const unsigned long last = ERR_peek_last_error();
  if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": malformed PEM certificate (", TakeOpenSslError(), ")"));
  }
  ERR_clear_error();
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": holds no PEM certificate"));
  }
  return certs;
}

// The key must not ask for a passphrase: the server runs unattended.
int NoPassphrase(char*, int, int, void*) { return -1; }

std::string Describe(X509* leaf) {
  Bio bio(BIO_new(BIO_s_mem()));
  BIO_puts(bio.get(), "subject ");
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(leaf), 0,
                     XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  BIO_puts(bio.get(), ", serial ");
  i2a_ASN1_INTEGER(bio.get(), X509_get_serialNumber(leaf));
  BIO_puts(bio.get(), ", valid until ");
  ASN1_TIME_print(bio.get(), X509_get0_notAfter(leaf));
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::Status LoadIdentity(const TlsFiles& files, TlsMaterial& out) {
  const std::string cert_name = Name(files, "_cert", files.cert);
  const std::string key_name = Name(files, "_key", files.key);
  auto cert_pem = ReadFile(cert_name, files.cert);
  if (!cert_pem.ok()) return cert_pem.status();
  auto certs = ParseCertificates(cert_name, *cert_pem);
  if (!certs.ok()) return certs.status();
  auto key_pem = ReadFile(key_name, files.key);
  if (!key_pem.ok()) return key_pem.status();
  ERR_clear_error();
  Bio bio = MemoryBio(*key_pem);
  out.key.reset(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (out.key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_name,
                     ": holds no usable PEM private key (an unencrypted "
                     "PKCS#8, RSA or EC key is expected; ",
                     TakeOpenSslError(), ")"));
  }
  out.leaf = std::move(certs->front());
  if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_name, " does not match the certificate in ", cert_name,
                     " (a key and certificate from different "
                     "pairs, or a half-replaced pair)"));
  }
  for (size_t i = 1; i < certs->size(); ++i) {
    out.intermediates.push_back(std::move((*certs)[i]));
  }
  out.cert_chain_pem = *std::move(cert_pem);
  out.private_key_pem = *std::move(key_pem);
  out.summary = Describe(out.leaf.get());
  out.outside_validity =
      X509_cmp_current_time(X509_get0_notBefore(out.leaf.get())) > 0 ||
      X509_cmp_current_time(X509_get0_notAfter(out.leaf.get())) < 0;
  return absl::OkStatus();
}

absl::Status LoadClientCa(const TlsFiles& files, TlsMaterial& out) {
  const std::string name = Name(files, "_client_ca", files.client_ca);
  auto pem = ReadFile(name, files.client_ca);
  if (!pem.ok()) return pem.status();
  auto certs = ParseCertificates(name, *pem);
  if (!certs.ok()) return certs.status();
  out.client_ca_store.reset(X509_STORE_new());
  out.client_ca_names.reset(sk_X509_NAME_new_null());
  for (const X509Ptr& cert : *certs) {
    X509_STORE_add_cert(out.client_ca_store.get(), cert.get());
    sk_X509_NAME_push(out.client_ca_names.get(),
                      X509_NAME_dup(X509_get_subject_name(cert.get())));
  }
  out.client_ca_pem = *std::move(pem);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(
    const TlsFiles& files) {
  auto material = std::make_shared<TlsMaterial>();
  if (absl::Status s = LoadIdentity(files, *material); !s.ok()) return s;
  if (!files.client_ca.empty()) {
    if (absl::Status s = LoadClientCa(files, *material); !s.ok()) return s;
  }
  return std::shared_ptr<const TlsMaterial>(std::move(material));
}

}  // namespace fusion::security

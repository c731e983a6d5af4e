// A TLS identity read from PEM files and checked to be usable: a
// certificate chain, its private key, and optionally the CA bundle that
// client certificates must chain to (mutual TLS).
//
// Loading refuses, with an INVALID_ARGUMENT (NOT_FOUND when a file cannot be
// read) whose message names the flag and the file: an unreadable file, a
// file with no PEM certificate or key in it, an encrypted key, a key that
// does not belong to the leaf certificate, a CA file holding no certificate.
// An expired or not-yet-valid leaf is loaded (clients will judge it) but
// flagged, so the caller can warn.
//
// Immutable once loaded; safe to share across threads (shared_ptr<const>).
#ifndef FUSION_SERVER_SECURITY_TLS_MATERIAL_H_
#define FUSION_SERVER_SECURITY_TLS_MATERIAL_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fusion::security {

// Where an identity lives, and the flag names used in error messages
// ("--tls" gives "--tls_cert", "--tls_key", "--tls_client_ca").
struct TlsFiles {
  std::string flag_prefix = "--tls";
  std::string cert;       // PEM: the leaf first, then intermediates
  std::string key;        // PEM private key, unencrypted
  std::string client_ca;  // PEM CA bundle; empty: client certs not asked for
};

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct X509NameStackFree {
  void operator()(STACK_OF(X509_NAME) * s) const {
    sk_X509_NAME_pop_free(s, X509_NAME_free);
  }
};

struct TlsMaterial {
  // The files' text, as gRPC takes it.
  std::string cert_chain_pem;
  std::string private_key_pem;
  std::string client_ca_pem;  // empty: no mutual TLS
  // The same, parsed, as OpenSSL takes it (the HTTPS port).
  std::unique_ptr<X509, X509Free> leaf;
  std::vector<std::unique_ptr<X509, X509Free>> intermediates;
  std::unique_ptr<EVP_PKEY, EvpPkeyFree> key;
  std::unique_ptr<X509_STORE, X509StoreFree> client_ca_store;  // or null
  // The CA subjects a server names in its certificate request.
  std::unique_ptr<STACK_OF(X509_NAME), X509NameStackFree> client_ca_names;
  // "subject CN=x, serial 0A1B, valid until Jan  1 00:00:00 2030 GMT".
  std::string summary;
  bool outside_validity = false;  // expired, or not valid yet
};

// Reads and checks `files`; see the file comment for what is refused.
absl::StatusOr<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(
    const TlsFiles& files);

}  // namespace fusion::security

#endif  // FUSION_SERVER_SECURITY_TLS_MATERIAL_H_

#include "server/security/https_context.h"

#include <openssl/x509.h>

namespace fusion::security {
namespace {

// OpenSSL's certificate callback: runs once per handshake, before the
// server's certificate is sent. 1: go on; 0: fail the handshake.
int UseCurrentCertificate(SSL* ssl, void* arg) {
  auto* reloader = static_cast<CertificateReloader*>(arg);
  reloader->ReloadIfChanged();
  const CertificateReloader::Current current = reloader->current();
  const TlsMaterial& material = *current.material;
  STACK_OF(X509)* chain = sk_X509_new_null();
  for (const auto& cert : material.intermediates) {
    sk_X509_push(chain, cert.get());
  }
  // Takes its own references to the certificate, key and chain members.
  const int used = SSL_use_cert_and_key(ssl, material.leaf.get(),
                                        material.key.get(), chain, 1);
  sk_X509_free(chain);
  if (used != 1) return 0;
  if (material.client_ca_store != nullptr) {
    if (SSL_set1_verify_cert_store(ssl, material.client_ca_store.get()) != 1) {
      return 0;
    }
    SSL_set_client_CA_list(ssl,
                           SSL_dup_CA_list(material.client_ca_names.get()));
  }
  return 1;
}

}  // namespace

bool ConfigureHttpsContext(SSL_CTX& ctx, CertificateReloader* reloader) {
  if (SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1) return false;
  // No resumption: a resumed session would skip the certificate callback and
  // outlive a rotated client CA.
  SSL_CTX_set_session_cache_mode(&ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_TICKET);
  if (SSL_CTX_set_num_tickets(&ctx, 0) != 1) return false;
  SSL_CTX_set_cert_cb(&ctx, UseCurrentCertificate, reloader);
  if (!reloader->files().client_ca.empty()) {
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
  }
  return true;
}

}  // namespace fusion::security

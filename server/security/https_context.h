// TLS for the HTTP port (cpp-httplib's SSLServer hands us its SSL_CTX):
// TLS 1.2 or later, the certificate taken from a CertificateReloader at
// every handshake (so rotated files take effect on the next connection),
// and, when the reloader has a client CA, a client certificate required and
// verified against it (the CA rotates too). Session resumption is off, so
// every connection is judged against the files in force.
#ifndef FUSION_SERVER_SECURITY_HTTPS_CONTEXT_H_
#define FUSION_SERVER_SECURITY_HTTPS_CONTEXT_H_

#include <openssl/ssl.h>

#include "server/security/certificate_reloader.h"

namespace fusion::security {

// Configures `ctx`; `reloader` must outlive it. False when OpenSSL refuses a
// setting (the HTTP port then fails to start).
bool ConfigureHttpsContext(SSL_CTX& ctx, CertificateReloader* reloader);

}  // namespace fusion::security

#endif  // FUSION_SERVER_SECURITY_HTTPS_CONTEXT_H_

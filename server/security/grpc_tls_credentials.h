// gRPC server credentials whose certificate, key and client CA come from a
// CertificateReloader, so rotated files take effect on the next connection
// without a restart.
//
// Built on gRPC's SSL "certificate config fetcher" (grpc_security.h): gRPC
// asks for the config at the start of every handshake; we check the files
// (ReloadIfChanged) and hand over a new config only when the reloader's
// generation moved. Connections already open keep the certificate they
// were made with. gRPC 1.51's C++ API has no way to wrap such C credentials,
// so a small grpc::ServerCredentials subclass adds the listening port
// itself.
//
// With a client CA, every connection must present a certificate that chains
// to it (REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY); one without, or
// signed by another CA, fails the TLS handshake. The CA rotates with the
// rest; turning mutual TLS on or off takes a restart.
#ifndef FUSION_SERVER_SECURITY_GRPC_TLS_CREDENTIALS_H_
#define FUSION_SERVER_SECURITY_GRPC_TLS_CREDENTIALS_H_

#include <grpc/grpc_security.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/security/certificate_reloader.h"

namespace fusion::security {

class GrpcTlsCredentials {
 public:
  // `reloader` must outlive this object. This object must outlive every
  // grpc::Server built with credentials(): gRPC calls back into it on each
  // handshake.
  explicit GrpcTlsCredentials(CertificateReloader* reloader);

  GrpcTlsCredentials(const GrpcTlsCredentials&) = delete;
  GrpcTlsCredentials& operator=(const GrpcTlsCredentials&) = delete;

  // Credentials for one ServerBuilder::AddListeningPort call: each port
  // remembers which generation it was handed, so call this once per port.
  std::shared_ptr<grpc::ServerCredentials> credentials();

 private:
  // What one listening port was handed.
  struct Port {
    CertificateReloader* reloader;
    absl::Mutex mu;
    uint64_t handed_generation ABSL_GUARDED_BY(mu) = 0;  // 0: none yet
  };
  static grpc_ssl_certificate_config_reload_status Fetch(
      void* port, grpc_ssl_server_certificate_config** config);

  CertificateReloader* const reloader_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Port>> ports_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::security

#endif  // FUSION_SERVER_SECURITY_GRPC_TLS_CREDENTIALS_H_

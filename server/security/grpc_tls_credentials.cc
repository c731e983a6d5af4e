#include "server/security/grpc_tls_credentials.h"

#include <grpc/grpc.h>

#include <cstdlib>
#include <string>

#include "server/common/log.h"

namespace fusion::security {
namespace {

// Owns C credentials and adds ports with them (what gRPC's own, internal,
// SecureServerCredentials does for the credentials its C++ API builds).
class FetcherServerCredentials final : public grpc::ServerCredentials {
 public:
  explicit FetcherServerCredentials(grpc_server_credentials* credentials)
      : credentials_(credentials) {}
  ~FetcherServerCredentials() override {
    grpc_server_credentials_release(credentials_);
  }

  // Identity is proven at the handshake; fusion-server installs no
  // per-call metadata processor, so being asked for one is a programming
  // error.
  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    Log(LogLevel::kError, "GrpcTlsCredentials: no auth metadata processor");
    std::abort();
  }

 private:
  int AddPortToServer(const std::string& address,
                      grpc_server* server) override {
    return grpc_server_add_http2_port(server, address.c_str(), credentials_);
  }

  grpc_server_credentials* const credentials_;
};

}  // namespace

GrpcTlsCredentials::GrpcTlsCredentials(CertificateReloader* reloader)
    : reloader_(reloader) {}

std::shared_ptr<grpc::ServerCredentials> GrpcTlsCredentials::credentials() {
  auto port = std::make_unique<Port>();
  port->reloader = reloader_;
  const bool mutual = !reloader_->files().client_ca.empty();
  grpc_ssl_server_credentials_options* options =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
          &GrpcTlsCredentials::Fetch, port.get());
  auto credentials = std::make_shared<FetcherServerCredentials>(
      grpc_ssl_server_credentials_create_with_options(options));
  absl::MutexLock lock(&mu_);
  ports_.push_back(std::move(port));
  return credentials;
}

grpc_ssl_certificate_config_reload_status GrpcTlsCredentials::Fetch(
    void* port_ptr, grpc_ssl_server_certificate_config** config) {
  Port& port = *static_cast<Port*>(port_ptr);
  port.reloader->ReloadIfChanged();
  const CertificateReloader::Current current = port.reloader->current();
  absl::MutexLock lock(&port.mu);
  if (current.generation == port.handed_generation) {
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  }
  const TlsMaterial& material = *current.material;
  // gRPC 1.51 asserts that a fetched config has root certificates, even
  // when client certificates are not asked for (it then only loads them,
  // and never sends or uses them): without a client CA, the server's own
  // chain stands in.
  const std::string& roots = material.client_ca_pem.empty()
                                 ? material.cert_chain_pem
                                 : material.client_ca_pem;
  // gRPC copies the strings.
  grpc_ssl_pem_key_cert_pair pair = {material.private_key_pem.c_str(),
                                     material.cert_chain_pem.c_str()};
  *config = grpc_ssl_server_certificate_config_create(roots.c_str(), &pair, 1);
  port.handed_generation = current.generation;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

}  // namespace fusion::security

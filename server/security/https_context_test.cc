// The HTTP port over HTTPS: a real HttpEndpoint with ConfigureHttpsContext
// and cpp-httplib's real TLS client.
#include "server/security/https_context.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/metrics/http_endpoint.h"
#include "server/security/test_certificates.h"

namespace fusion::security {
namespace {

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t size = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  close(fd);
  return ntohs(address.sin_port);
}

class HttpsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_.MakeCa("ca");
    certs_.MakeCa("other_ca");
    certs_.MakeLeaf("server", "ca");
    certs_.MakeLeaf("client", "ca");
    certs_.MakeLeaf("stranger", "other_ca");
    certs_.Replace("tls.crt", "server.crt");
    certs_.Replace("tls.key", "server.key");
  }

  void Start(bool mutual) {
    TlsFiles files;
    files.flag_prefix = "--http_tls";
    files.cert = certs_.Path("tls.crt");
    files.key = certs_.Path("tls.key");
    if (mutual) files.client_ca = certs_.Path("ca.crt");
    auto reloader = CertificateReloader::Create(files);
    ASSERT_TRUE(reloader.ok()) << reloader.status();
    reloader_ = std::move(*reloader);
    port_ = FreePort();
    metrics::HttpEndpointOptions options;
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.tls_setup = [this](SSL_CTX& ctx) {
      return ConfigureHttpsContext(ctx, reloader_.get());
    };
    auto endpoint = metrics::HttpEndpoint::Start(options);
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    endpoint_ = std::move(*endpoint);
  }

  // The status of GET /healthz over a fresh connection that trusts `ca`
  // and presents `client` if given; -1 when no connection was made.
  int Get(const std::string& ca, const std::string& client = "") {
    std::unique_ptr<httplib::SSLClient> https =
        client.empty()
            ? std::make_unique<httplib::SSLClient>("127.0.0.1", port_)
            : std::make_unique<httplib::SSLClient>(
                  "127.0.0.1", port_, certs_.Path(client + ".crt"),
                  certs_.Path(client + ".key"));
    https->set_ca_cert_path(certs_.Path(ca + ".crt").c_str());
    https->enable_server_certificate_verification(true);
    https->set_connection_timeout(5);
    auto result = https->Get("/healthz");
    return result ? result->status : -1;
  }

  TestCertificates certs_;
  std::unique_ptr<CertificateReloader> reloader_;
  std::unique_ptr<metrics::HttpEndpoint> endpoint_;
  int port_ = 0;
};

TEST_F(HttpsContextTest, ServesHttpsOnly) {
  Start(/*mutual=*/false);
  EXPECT_EQ(Get("ca"), 200);
  EXPECT_EQ(Get("other_ca"), -1);  // the client does not trust it
  httplib::Client plain("127.0.0.1", port_);
  plain.set_connection_timeout(5);
  plain.set_read_timeout(5);
  EXPECT_FALSE(plain.Get("/healthz"));
}

TEST_F(HttpsContextTest, MutualTlsNeedsAClientCertificateOfTheCa) {
  Start(/*mutual=*/true);
  EXPECT_EQ(Get("ca", "client"), 200);
  EXPECT_EQ(Get("ca"), -1);
  EXPECT_EQ(Get("ca", "stranger"), -1);
}

TEST_F(HttpsContextTest, ARotatedCertificateServesTheNextConnection) {
  Start(/*mutual=*/false);
  certs_.MakeCa("new_ca");
  certs_.MakeLeaf("new_server", "new_ca");
  ASSERT_EQ(Get("ca"), 200);
  certs_.Replace("tls.key", "new_server.key");
  certs_.Replace("tls.crt", "new_server.crt");
  EXPECT_EQ(Get("new_ca"), 200);
  EXPECT_EQ(Get("ca"), -1);
}

}  // namespace
}  // namespace fusion::security

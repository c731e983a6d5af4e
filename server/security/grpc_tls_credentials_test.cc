// A real gRPC server on GrpcTlsCredentials and real TLS clients: whether the
// handshake succeeds is what a channel's connection tells.
#include "server/security/grpc_tls_credentials.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>

#include "server/security/test_certificates.h"

namespace fusion::security {
namespace {

class GrpcTlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_.MakeCa("ca");
    certs_.MakeCa("other_ca");
    certs_.MakeLeaf("server", "ca");
    certs_.MakeLeaf("client", "ca");
    certs_.MakeLeaf("stranger", "other_ca");
    certs_.Replace("tls.crt", "server.crt");
    certs_.Replace("tls.key", "server.key");
    certs_.Replace("client_ca.crt", "ca.crt");
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  void StartServer(bool mutual) {
    TlsFiles files;
    files.cert = certs_.Path("tls.crt");
    files.key = certs_.Path("tls.key");
    if (mutual) files.client_ca = certs_.Path("client_ca.crt");
    auto reloader = CertificateReloader::Create(files);
    ASSERT_TRUE(reloader.ok()) << reloader.status();
    reloader_ = std::move(*reloader);
    credentials_ = std::make_unique<GrpcTlsCredentials>(reloader_.get());
    grpc::ServerBuilder builder;
    // Any service will do: only the handshakes are tested.
    builder.RegisterCallbackGenericService(&service_);
    builder.AddListeningPort("127.0.0.1:0", credentials_->credentials(),
                             &port_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  // Whether a fresh connection trusting `ca` (and presenting `client`, if
  // given) completes its handshake.
  bool Connects(const std::string& ca, const std::string& client = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = certs_.Read(ca + ".crt");
    if (!client.empty()) {
      ssl.pem_cert_chain = certs_.Read(client + ".crt");
      ssl.pem_private_key = certs_.Read(client + ".key");
    }
    return ConnectsWith(grpc::SslCredentials(ssl));
  }

  bool ConnectsWith(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    // Its own connection, not one another channel of this process made.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(port_), credentials, args);
    // READY: the handshake succeeded; TRANSIENT_FAILURE: it failed.
    const auto deadline =
        std::chrono::system_clock::now() + std::chrono::seconds(30);
    grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY &&
           state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
           channel->WaitForStateChange(state, deadline)) {
      state = channel->GetState(/*try_to_connect=*/true);
    }
    return state == GRPC_CHANNEL_READY;
  }

  TestCertificates certs_;
  std::unique_ptr<CertificateReloader> reloader_;
  std::unique_ptr<GrpcTlsCredentials> credentials_;
  grpc::CallbackGenericService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(GrpcTlsCredentialsTest, ServesTlsAndRefusesPlaintext) {
  StartServer(/*mutual=*/false);
  EXPECT_TRUE(Connects("ca"));
  EXPECT_FALSE(Connects("other_ca"));  // the client does not trust it
  EXPECT_FALSE(ConnectsWith(grpc::InsecureChannelCredentials()));
}

TEST_F(GrpcTlsCredentialsTest, MutualTlsNeedsAClientCertificateOfTheCa) {
  StartServer(/*mutual=*/true);
  EXPECT_TRUE(Connects("ca", "client"));
  EXPECT_FALSE(Connects("ca"));
  EXPECT_FALSE(Connects("ca", "stranger"));
}

TEST_F(GrpcTlsCredentialsTest, ARotatedCertificateServesTheNextConnection) {
  StartServer(/*mutual=*/false);
  certs_.MakeCa("new_ca");
  certs_.MakeLeaf("new_server", "new_ca");
  ASSERT_TRUE(Connects("ca"));
  certs_.Replace("tls.key", "new_server.key");
  certs_.Replace("tls.crt", "new_server.crt");
  EXPECT_TRUE(Connects("new_ca"));
  EXPECT_FALSE(Connects("ca"));
  EXPECT_EQ(reloader_->current().generation, 2u);
}

TEST_F(GrpcTlsCredentialsTest, ARotatedClientCaJudgesTheNextConnection) {
  StartServer(/*mutual=*/true);
  ASSERT_TRUE(Connects("ca", "client"));
  certs_.Replace("client_ca.crt", "other_ca.crt");
  EXPECT_TRUE(Connects("ca", "stranger"));
  EXPECT_FALSE(Connects("ca", "client"));
}

TEST_F(GrpcTlsCredentialsTest, BrokenReplacementFilesKeepTheServerServing) {
  StartServer(/*mutual=*/false);
  certs_.Write("tls.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
  EXPECT_TRUE(Connects("ca"));
  EXPECT_EQ(reloader_->current().generation, 1u);
}

}  // namespace
}  // namespace fusion::security

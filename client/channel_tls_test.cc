// CreateChannel's client-certificate options (mutual TLS). That the
// certificate is presented is shown end to end by tests/integration/
// test_tls.py (fusion-client against an mTLS server).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "client/channel_config.h"

namespace fusion::client {
namespace {

TEST(CreateChannelTls, ClientCertificateAndKeyGoTogetherAndNeedTls) {
  const std::string pem = std::string(::testing::TempDir()) + "/any.pem";
  std::ofstream(pem) << "-\n";
  ConnectionOptions o;
  o.target = "127.0.0.1:1";
  o.tls_cert_file = pem;
  EXPECT_EQ(CreateChannel(o).status().code(),
            absl::StatusCode::kInvalidArgument);  // without --tls
  o.tls = true;
  EXPECT_EQ(CreateChannel(o).status().code(),
            absl::StatusCode::kInvalidArgument);  // without its key
  o.tls_cert_file.clear();
  o.tls_key_file = pem;
  EXPECT_EQ(CreateChannel(o).status().code(),
            absl::StatusCode::kInvalidArgument);  // a key alone
  std::remove(pem.c_str());
}

TEST(CreateChannelTls, UnreadableClientFilesAreNotFound) {
  ConnectionOptions o;
  o.target = "127.0.0.1:1";
  o.tls = true;
  o.tls_cert_file = "/nonexistent/client.crt";
  o.tls_key_file = "/nonexistent/client.key";
  const absl::Status status = CreateChannel(o).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("/nonexistent/client.crt"),
            std::string::npos);
}

}  // namespace
}  // namespace fusion::client

#include "client/channel_config.h"

#include "gtest/gtest.h"

namespace fusion::client {
namespace {

TEST(NormalizeTarget, PassesThroughSingleAddressesAndUris) {
  EXPECT_EQ(*NormalizeTarget("localhost:50051"), "localhost:50051");
  EXPECT_EQ(*NormalizeTarget("dns:///fusion.default.svc:50051"),
            "dns:///fusion.default.svc:50051");
  EXPECT_EQ(*NormalizeTarget("ipv4:127.0.0.1:1,127.0.0.1:2"),
            "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(*NormalizeTarget("unix:/tmp/fusion.sock"), "unix:/tmp/fusion.sock");
  EXPECT_EQ(*NormalizeTarget("  10.0.0.1:80 "), "10.0.0.1:80");
}

TEST(NormalizeTarget, CommaListBecomesIpUri) {
  EXPECT_EQ(*NormalizeTarget("127.0.0.1:5001,127.0.0.1:5002"),
            "ipv4:127.0.0.1:5001,127.0.0.1:5002");
  EXPECT_EQ(*NormalizeTarget("10.0.0.1:80, 10.0.0.2:80"),
            "ipv4:10.0.0.1:80,10.0.0.2:80");
  EXPECT_EQ(*NormalizeTarget("[::1]:5001,[::1]:5002"),
            "ipv6:[::1]:5001,[::1]:5002");
}

TEST(NormalizeTarget, RejectsBadLists) {
  EXPECT_FALSE(NormalizeTarget("").ok());
  EXPECT_FALSE(NormalizeTarget("a.example:1,b.example:2").ok());
  EXPECT_FALSE(NormalizeTarget("127.0.0.1:1,").ok());
  EXPECT_FALSE(NormalizeTarget("127.0.0.1,127.0.0.2:5").ok());
  EXPECT_FALSE(NormalizeTarget("127.0.0.1:1,[::1]:2").ok());
  EXPECT_FALSE(NormalizeTarget("127.0.0.1:99999,127.0.0.1:1").ok());
  absl::StatusOr<std::string> names = NormalizeTarget("a:1,b:2");
  EXPECT_NE(names.status().message().find("dns:///"), std::string::npos);
}

TEST(ServiceConfigJson, Policies) {
  EXPECT_EQ(*ServiceConfigJson(""), "");
  EXPECT_EQ(*ServiceConfigJson("round_robin"),
            R"({"loadBalancingConfig":[{"round_robin":{}}]})");
  EXPECT_EQ(*ServiceConfigJson("pick_first"),
            R"({"loadBalancingConfig":[{"pick_first":{}}]})");
  EXPECT_EQ(ServiceConfigJson("random").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CreateChannel, ValidatesOptions) {
  ConnectionOptions o;
  o.target = "127.0.0.1:1";
  EXPECT_TRUE(CreateChannel(o).ok());
  o.lb_policy = "least_loaded";
  EXPECT_EQ(CreateChannel(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.lb_policy = "round_robin";
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(CreateChannel(o).status().code(),
            absl::StatusCode::kInvalidArgument);  // CA without --tls
  o.tls = true;
  EXPECT_EQ(CreateChannel(o).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fusion::client

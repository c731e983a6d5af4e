// The v2 HTTP routes over a real httplib server on 127.0.0.1: the routes, an
// InferenceCore, a registry holding one model over FakeModelRuntime, and an
// httplib client.
#include "server/api/v2/http_routes.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"
#include "server/serving/fake_repository.h"
#include "server/serving/model_registry.h"
#include "server/serving/serving_observer.h"
#include "server/serving/serving_state.h"

namespace fusion::api::v2 {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using runtime::FakeModelRuntime;

constexpr size_t kMaxBody = 4096;

constexpr char kConfig[] = R"pb(
  name: "m"
  version: 1
  classes: "a"
  classes: "b"
  positive_class: 1
  max_tokens: 16
  attention_heads: 2
  features { name: "x" }
  features { name: "y" }
  batching { instance_count: 1 max_queue_size: 64 }
)pb";

// "hello" is 3 tokens: the fake scores it 0.003.
constexpr char kInfer[] = R"({"id": "r1", "inputs": [
  {"name": "TEXT", "datatype": "BYTES", "shape": [2], "data": ["hello", "hello hello"]},
  {"name": "FEATURES", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}]})";

std::string FloatsLE(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());  // little-endian host
  return out;
}

class HttpRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repo = serving::FakeRepository::Create(
        fs::path(::testing::TempDir()) /
            absl::StrCat("http_routes_test_", ::testing::UnitTest::GetInstance()
                                                  ->current_test_info()
                                                  ->name()),
        {kConfig, {}, nullptr});
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = std::move(*repo);
    fake_ = &repo_->fake();
    state_.SetReady(&repo_->registry());
    core_ = std::make_unique<InferenceCore>(&state_, nullptr, "9.9.9");

    server_ = std::make_unique<httplib::Server>();
    HttpRoutesOptions routes;
    routes.max_body_bytes = kMaxBody;
    AddV2Routes(*server_, *core_, routes);
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // One request before any test's: Debian's cpp-httplib builds a static
    // set of method names on its first request, under a C++ static-init
    // guard whose fast path ThreadSanitizer cannot see in that
    // uninstrumented library. Built here, before requests run side by side,
    // its readers are ordered after it through httplib's task queue mutex,
    // which TSan does see (ignoring the library instead would hide that
    // mutex too, and with it every handler's synchronization).
    auto warm = Client()->Get("/v2/health/live");
    ASSERT_TRUE(warm) << "the server does not answer";
  }

  void TearDown() override {
    if (fake_ != nullptr) fake_->Release();
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
    state_.ClearRegistry();
    repo_.reset();
  }

  std::unique_ptr<httplib::Client> Client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_read_timeout(30, 0);
    client->set_write_timeout(30, 0);
    return client;
  }

  httplib::Result Get(const std::string& path) { return Client()->Get(path); }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return Client()->Post(path, headers, body, "application/json");
  }

  // The "error" of a JSON error body ("" if there is none).
  static std::string ErrorOf(const httplib::Result& res) {
    const Json j = Json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.contains("error")) return "";
    return j["error"].get<std::string>();
  }

  FakeModelRuntime* fake_ = nullptr;  // owned by the servable
  serving::ServingState state_;
  std::unique_ptr<serving::FakeRepository> repo_;
  std::unique_ptr<InferenceCore> core_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(HttpRoutesTest, ServerMetadataAndHealth) {
  auto res = Get("/v2");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const Json metadata = Json::parse(res->body);
  EXPECT_EQ(metadata["name"], "fusionserve");
  EXPECT_EQ(metadata["version"], "9.9.9");
  EXPECT_TRUE(metadata["extensions"].is_array());
  EXPECT_EQ(Get("/v2/")->status, 200);

  EXPECT_EQ(Get("/v2/health/live")->status, 200);
  EXPECT_EQ(Get("/v2/health/ready")->status, 200);
  state_.StopAdvertising();
  EXPECT_EQ(Get("/v2/health/live")->status, 200);
  res = Get("/v2/health/ready");
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(ErrorOf(res), "the server is not ready");
}

TEST_F(HttpRoutesTest, ModelReady) {
  auto res = Get("/v2/models/m/ready");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body),
            Json::parse(R"({"name":"m","ready":true})"));
  EXPECT_EQ(Get("/v2/models/m/versions/1/ready")->status, 200);
  res = Get("/v2/models/m/versions/2/ready");
  EXPECT_EQ(res->status, 404);
  EXPECT_FALSE(ErrorOf(res).empty());
  res = Get("/v2/models/nope/ready");
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(ErrorOf(res).find("nope"), std::string::npos) << res->body;
  state_.ClearRegistry();  // as while models load
  res = Get("/v2/models/m/ready");
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_FALSE(ErrorOf(res).empty());
}

TEST_F(HttpRoutesTest, ModelMetadataConfigAndStatistics) {
  auto res = Get("/v2/models/m");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json metadata = Json::parse(res->body);
  EXPECT_EQ(metadata["name"], "m");
  EXPECT_EQ(metadata["versions"], Json::parse(R"(["1"])"));
  EXPECT_EQ(metadata["inputs"][0]["name"], "TEXT");
  EXPECT_TRUE(metadata["inputs"][0]["shape"][0].is_number_integer());
  EXPECT_EQ(Get("/v2/models/m/versions/1")->status, 200);

  res = Get("/v2/models/m/config");
  ASSERT_EQ(res->status, 200) << res->body;
  const Json config = Json::parse(res->body);
  EXPECT_EQ(config["name"], "m");
  EXPECT_FALSE(config.contains("config"));

  res = Get("/v2/models/nope");
  EXPECT_EQ(res->status, 404);
  EXPECT_FALSE(ErrorOf(res).empty());
  EXPECT_EQ(Get("/v2/models/nope/config")->status, 404);
  EXPECT_EQ(Get("/v2/models/m/versions/7")->status, 404);

  // One inference, then the statistics count it, as numbers.
  ASSERT_EQ(Post("/v2/models/m/infer", kInfer)->status, 200);
  for (const std::string path : {"/v2/models/stats", "/v2/models/m/stats",
                                 "/v2/models/m/versions/1/stats"}) {
    res = Get(path);
    ASSERT_EQ(res->status, 200) << path << ": " << res->body;
    const Json stats = Json::parse(res->body);
    ASSERT_EQ(stats["model_stats"].size(), 1u) << path;
    const Json& m = stats["model_stats"][0];
    EXPECT_EQ(m["name"], "m");
    EXPECT_EQ(m["version"], "1");
    EXPECT_TRUE(m["inference_count"].is_number_unsigned()) << path;
    EXPECT_EQ(m["inference_count"], 2) << path;
    EXPECT_EQ(m["inference_stats"]["success"]["count"], 1) << path;
    EXPECT_TRUE(m["inference_stats"]["cache_hit"]["ns"].is_number()) << path;
  }
  EXPECT_EQ(Get("/v2/models/nope/stats")->status, 404);
}

TEST_F(HttpRoutesTest, InferJson) {
  auto res = Post("/v2/models/m/infer", kInfer);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_FALSE(res->has_header("Inference-Header-Content-Length"));
  const Json j = Json::parse(res->body);
  EXPECT_EQ(j["id"], "r1");
  EXPECT_EQ(j["model_name"], "m");
  EXPECT_EQ(j["model_version"], "1");
  bool score_seen = false;
  for (const Json& output : j["outputs"]) {
    if (output["name"] == "SCORE") {
      score_seen = true;
      EXPECT_EQ(output["datatype"], "FP32");
      EXPECT_EQ(output["shape"], Json::parse("[2]"));
      // "hello" is 3 tokens, "hello hello" 4.
      EXPECT_EQ(output["data"], Json::parse("[0.003, 0.004]"));
    }
  }
  EXPECT_TRUE(score_seen) << res->body;
  EXPECT_EQ(Post("/v2/models/m/versions/1/infer", kInfer)->status, 200);
}

TEST_F(HttpRoutesTest, InferBinary) {
  const std::string json = R"({"inputs": [
    {"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["hello"]},
    {"name": "FEATURES", "datatype": "FP32", "shape": [1, 2],
     "parameters": {"binary_data_size": 8}}],
    "outputs": [{"name": "SCORE", "parameters": {"binary_data": true}},
                {"name": "PROBABILITIES"}]})";
  auto res =
      Post("/v2/models/m/infer", json + FloatsLE({1, 2}),
           {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/octet-stream");
  const size_t n =
      std::stoul(res->get_header_value("Inference-Header-Content-Length"));
  ASSERT_LE(n, res->body.size());
  const Json j = Json::parse(res->body.substr(0, n));
  ASSERT_EQ(j["outputs"].size(), 2u) << j.dump();
  EXPECT_EQ(j["outputs"][0]["name"], "SCORE");
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 4);
  EXPECT_FALSE(j["outputs"][0].contains("data"));
  EXPECT_EQ(j["outputs"][1]["name"], "PROBABILITIES");
  ASSERT_EQ(j["outputs"][1]["data"].size(), 2u);
  EXPECT_NEAR(j["outputs"][1]["data"][0].get<double>(), 0.997, 1e-6);
  EXPECT_NEAR(j["outputs"][1]["data"][1].get<double>(), 0.003, 1e-6);
  EXPECT_EQ(res->body.substr(n), FloatsLE({0.003f}));
}

TEST_F(HttpRoutesTest, InferErrors) {
  auto res = Post("/v2/models/m/infer", "{");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(ErrorOf(res).rfind("malformed JSON", 0), 0u) << res->body;

  res = Post("/v2/models/m/infer",
             R"({"inputs": [{"name": "FEATURES", "datatype": "FP32",
                 "shape": [1, 2], "data": [1, "x"]}]})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(ErrorOf(res),
            "inputs[0].data[1] (FEATURES): expected a number, got a string");

  res = Post("/v2/models/nope/infer", kInfer);
  EXPECT_EQ(res->status, 404);
  EXPECT_FALSE(ErrorOf(res).empty());

  // The core's own validation.
  res = Post("/v2/models/m/infer",
             R"({"inputs": [{"name": "BOGUS", "datatype": "FP32",
                 "shape": [1], "data": [1]}]})");
  EXPECT_EQ(res->status, 400);
  EXPECT_FALSE(ErrorOf(res).empty());

  // A model that fails on row 0's features (1, 2): a failed batch is
  // computed again in halves, so a one-off failure would now succeed.
  fake_->PoisonFeatureValue(1.0f, absl::InternalError("boom"));
  res = Post("/v2/models/m/infer", kInfer);
  EXPECT_EQ(res->status, 500);
  EXPECT_NE(ErrorOf(res).find("boom"), std::string::npos) << res->body;

  state_.StartDraining();
  res = Post("/v2/models/m/infer", kInfer);
  EXPECT_EQ(res->status, 503);
  EXPECT_FALSE(ErrorOf(res).empty());
}

// What the core refuses before a row becomes a native request: each error
// names the parameter or the tensor and row, in the request's own terms.
TEST_F(HttpRoutesTest, InferRefusesParametersAndIdRowsNamingThem) {
  const std::string features =
      R"({"name": "FEATURES", "datatype": "FP32", "shape": [1, 2],
          "data": [1, 2]})";
  const std::string text =
      R"({"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": ["hello"]})";
  const auto infer = [&](const std::string& parameters,
                         const std::string& input) {
    return Post("/v2/models/m/infer",
                absl::StrCat(R"({"parameters": )", parameters,
                             R"(, "inputs": [)", input, ", ", features, "]}"));
  };
  const int levels = repo_->registry()
                         .Find("m", "")
                         .value()
                         ->config()
                         .batching()
                         .priority_levels();
  // Triton's priority: 1..levels, 0 the default; nothing negative.
  auto res = infer(absl::StrCat(R"({"priority": )", levels, "}"), text);
  EXPECT_EQ(res->status, 200) << res->body;
  res = infer(absl::StrCat(R"({"priority": )", levels + 1, "}"), text);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(ErrorOf(res),
            absl::StrCat("parameters['priority']: ", levels + 1,
                         " is beyond the model's ", levels,
                         " levels (1 is the highest, 0 the default)"));
  res = infer(R"({"priority": -1})", text);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(ErrorOf(res),
            "parameters['priority']: expected a non-negative integer");
  res = infer(R"({"timeout": -5})", text);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(ErrorOf(res),
            "parameters['timeout']: expected a non-negative integer");

  // INPUT_IDS: a row with no ids, an id past int32.
  res = infer("{}", R"({"name": "INPUT_IDS", "datatype": "INT64",
                       "shape": [1, 0], "data": []})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(ErrorOf(res).rfind("INPUT_IDS row 0: no ids (L is 0)", 0), 0u)
      << res->body;
  res = infer("{}", R"({"name": "INPUT_IDS", "datatype": "INT64",
                       "shape": [1, 3], "data": [2, 1099511627776, 3]})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(ErrorOf(res).rfind(
                "INPUT_IDS row 0: id 1099511627776 at column 1 is outside "
                "the vocabulary [0, ",
                0),
            0u)
      << res->body;

  // A long input name is quoted short.
  res = infer("{}", absl::StrCat(R"({"name": ")", std::string(3000, 'n'),
                                 R"(", "datatype": "FP32", "shape": [1],
                                 "data": [1]})"));
  EXPECT_EQ(res->status, 400);
  EXPECT_LT(ErrorOf(res).size(), 300u);
  EXPECT_NE(ErrorOf(res).find("...(3000 bytes)'"), std::string::npos)
      << ErrorOf(res);
}

TEST_F(HttpRoutesTest, UnknownPathsAnswerJson) {
  auto res = Get("/v2/nothing/here");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(ErrorOf(res), "no route for GET /v2/nothing/here");
  res = Get("/v2/models/m/infer");  // infer is POST only
  EXPECT_EQ(res->status, 404);
}

TEST_F(HttpRoutesTest, BodyOverTheLimitIs413) {
  // Content-Length over the limit: httplib skips the body.
  const std::string big(kMaxBody + 1, ' ');
  auto res = Post("/v2/models/m/infer", big);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(ErrorOf(res), "the request body is larger than 4096 bytes");
  // Also on a route that takes no body.
  res = Post("/v2/models/m/ready", big);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(ErrorOf(res), "the request body is too large");

  // Chunked: read to the end and dropped, a little or far over the limit.
  for (const size_t total : {kMaxBody + 100, 10 * kMaxBody}) {
    auto client = Client();
    client->set_keep_alive(true);
    res = client->Post(
        "/v2/models/m/infer",
        [total](size_t offset, httplib::DataSink& sink) {
          if (offset >= total) {
            sink.done();
            return true;
          }
          const std::string chunk(std::min<size_t>(1000, total - offset), ' ');
          return sink.write(chunk.data(), chunk.size());
        },
        "application/json");
    ASSERT_TRUE(res) << total << ": " << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 413) << total;
    EXPECT_EQ(ErrorOf(res), "the request body is larger than 4096 bytes");
    // The connection stays in step: the next request on it is answered.
    res = client->Post("/v2/models/m/infer", kInfer, "application/json");
    ASSERT_TRUE(res) << total;
    EXPECT_EQ(res->status, 200) << total << ": " << res->body;
  }
  // The server goes on serving.
  res = Post("/v2/models/m/infer", kInfer);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpRoutesTest, ChunkedBodyWithinTheLimit) {
  const std::string body = kInfer;
  auto res = Client()->Post(
      "/v2/models/m/infer",
      [&body](size_t offset, httplib::DataSink& sink) {
        if (offset >= body.size()) {
          sink.done();
          return true;
        }
        const size_t n = std::min<size_t>(7, body.size() - offset);
        return sink.write(body.data() + offset, n);
      },
      "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST_F(HttpRoutesTest, ConcurrentInfers) {
  constexpr int kClients = 12;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([this, &ok] {
      auto client = Client();
      for (int k = 0; k < 5; ++k) {
        auto res =
            client->Post("/v2/models/m/infer", kInfer, "application/json");
        if (res && res->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients * 5);
}

}  // namespace
}  // namespace fusion::api::v2

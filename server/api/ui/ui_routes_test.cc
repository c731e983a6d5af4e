// The attention explorer's routes over a real httplib server on 127.0.0.1:
// the embedded page with its CSP, and the JSON API over a registry holding
// one model on FakeModelRuntime (no Torch). The page itself is tested in a
// browser by tests/ui.
#include "server/api/ui/ui_routes.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/api/ui/embedded_assets.h"
#include "server/runtime/bundle_config.h"
#include "server/runtime/fake_model_runtime.h"
#include "server/serving/fake_repository.h"
#include "server/serving/model_registry.h"
#include "server/serving/serving_state.h"

namespace fusion::api::ui {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kConfig[] = R"pb(
  name: "m"
  version: 1
  classes: "a"
  classes: "b"
  positive_class: 1
  max_tokens: 16
  attention_heads: 2
  features { name: "x" description: "the x" mean: 1 std: 2 }
  features { name: "y" allow_missing: true default_value: 7 }
  batching { instance_count: 1 max_queue_size: 64 }
)pb";

// Two usable examples, one by token ids only, one that is not JSON.
constexpr char kGolden[] =
    R"({"request_id": "g0", "text": "hello", "features": {"x": 1, "y": 2}}
{"request_id": "g1", "token_ids": [2, 4, 3], "features": {"x": 1}}
not json
{"request_id": "g2", "text": "hello hello", "features": {"x": 3}}
)";

class UiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto repo = serving::FakeRepository::Create(
        fs::path(::testing::TempDir()) /
            absl::StrCat("ui_routes_test_", ::testing::UnitTest::GetInstance()
                                                ->current_test_info()
                                                ->name()),
        {kConfig, {{"golden.jsonl", kGolden}}, nullptr});
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = std::move(*repo);
    state_.SetReady(&repo_->registry());

    server_ = std::make_unique<httplib::Server>();
    AddUiRoutes(*server_, {&state_, repo_->dir().string(),
                           [this](absl::StatusCode) { ++unrouted_; }});
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }

  void TearDown() override {
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
    state_.ClearRegistry();
    repo_.reset();
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    return client.Get(path);
  }
  httplib::Result Post(const std::string& path, const std::string& body) {
    httplib::Client client("127.0.0.1", port_);
    return client.Post(path, body, "application/json");
  }

  serving::ServingState state_;
  std::unique_ptr<serving::FakeRepository> repo_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  int unrouted_ = 0;
};

TEST_F(UiRoutesTest, ServesTheEmbeddedPageWithAStrictCsp) {
  ASSERT_EQ(EmbeddedAssets().size(), 4u);
  for (const EmbeddedAsset& asset : EmbeddedAssets()) {
    const std::string path =
        asset.path == "index.html" ? "/" : "/ui/" + std::string(asset.path);
    auto res = Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 200) << path;
    EXPECT_EQ(res->body, asset.body) << path;
    EXPECT_FALSE(res->body.empty()) << path;
    EXPECT_EQ(res->get_header_value("Content-Type"), asset.content_type);
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"),
              kContentSecurityPolicy);
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff");
  }
  EXPECT_NE(Get("/")->body.find(R"(<script src="/ui/app.js")"),
            std::string::npos);
  EXPECT_EQ(Get("/ui/nothing.js")->status, 404);
}

TEST_F(UiRoutesTest, ModelsListsEachReadyVersionsNativeMetadata) {
  auto res = Get("/ui/api/models");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json body = Json::parse(res->body);
  EXPECT_EQ(body["default_model"], "m");
  ASSERT_EQ(body["models"].size(), 1u);
  const Json& m = body["models"][0];
  EXPECT_EQ(m["name"], "m");
  EXPECT_EQ(m["version"], "1");
  EXPECT_EQ(m["attention_heads"], 2);
  EXPECT_EQ(m["max_tokens"], 16);
  ASSERT_EQ(m["features"].size(), 2u);
  EXPECT_EQ(m["features"][0]["description"], "the x");
  EXPECT_EQ(m["features"][0]["std"], 2.0);
  EXPECT_EQ(m["features"][0]["allow_missing"], false);  // printed when false
  EXPECT_EQ(m["features"][1]["default_value"], 7.0);

  state_.ClearRegistry();  // as while models load
  res = Get("/ui/api/models");
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(Json::parse(res->body)["code"], "UNAVAILABLE");
}

TEST_F(UiRoutesTest, ExamplesAreTheGoldenFilesTextRequests) {
  auto res = Get("/ui/api/examples?model=m&version=1");
  ASSERT_EQ(res->status, 200) << res->body;
  const Json examples = Json::parse(res->body)["examples"];
  ASSERT_EQ(examples.size(), 2u) << res->body;
  EXPECT_EQ(examples[0]["request_id"], "g0");
  EXPECT_EQ(examples[0]["text"], "hello");
  EXPECT_EQ(examples[0]["features"]["y"], 2);
  EXPECT_EQ(examples[1]["request_id"], "g2");
  EXPECT_EQ(Get("/ui/api/examples")->body, res->body);  // default model

  res = Get("/ui/api/examples?model=nope");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body)["code"], "NOT_FOUND");
  fs::remove(repo_->dir() / "m" / "1" / "golden.jsonl");
  res = Get("/ui/api/examples?model=m");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body)["examples"], Json::array());
}

TEST_F(UiRoutesTest, ScoreAnswersTheNativeResponse) {
  auto res = Post("/ui/api/score", R"({"model": "m", "text": "hello",
      "features": {"x": 1}, "attention": "ATTENTION_PER_HEAD"})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json r = Json::parse(res->body);
  EXPECT_EQ(r["model"], "m");
  EXPECT_EQ(r["model_version"], "1");
  EXPECT_EQ(r["probabilities"].size(), 2u);
  EXPECT_EQ(r["truncated"], false);
  EXPECT_EQ(r["timing"]["batch_size"], 1);
  EXPECT_TRUE(r["timing"].contains("queue_us"));
  const Json& a = r["attention"];
  EXPECT_EQ(a["tokens"], Json::parse(R"(["[CLS]", "hello", "[SEP]"])"));
  EXPECT_EQ(a["feature_names"], Json::parse(R"(["x", "y"])"));
  EXPECT_EQ(a["text_to_features_shape"], Json::parse("[2, 3, 2]"));
  EXPECT_EQ(a["features_to_text_shape"], Json::parse("[2, 2, 3]"));
  EXPECT_EQ(a["text_to_features"].size(), 12u);
  EXPECT_EQ(unrouted_, 0);
}

TEST_F(UiRoutesTest, ErrorsAreTheNativeApisStatusAndWords) {
  struct Case {
    std::string body;
    int http_status;
    std::string code;
    std::string message_has;
  };
  const Case cases[] = {
      {R"({"model": "m", "text": "hello", "features": {"z": 1}})", 400,
       "INVALID_ARGUMENT", "features['z']"},
      {R"({"model": "m", "text": "hello", "features": {"y": 1}})", 400,
       "INVALID_ARGUMENT", "'x'"},
      {R"({"model": "nope", "text": "hello", "features": {"x": 1}})", 404,
       "NOT_FOUND", "nope"},
      {R"({"model": "m", "model_version": "9", "text": "hello"})", 404,
       "NOT_FOUND", "9"},
      {"not json", 400, "INVALID_ARGUMENT", "not a ScoreRequest"},
      {R"({"text": "hello", "bogus": 1})", 400, "INVALID_ARGUMENT", "bogus"},
  };
  for (const Case& c : cases) {
    auto res = Post("/ui/api/score", c.body);
    ASSERT_TRUE(res) << c.body;
    EXPECT_EQ(res->status, c.http_status) << c.body << " -> " << res->body;
    const Json error = Json::parse(res->body);
    EXPECT_EQ(error["code"], c.code) << res->body;
    EXPECT_NE(error["message"].get<std::string>().find(c.message_has),
              std::string::npos)
        << res->body;
  }
  // Unparsable bodies and unknown models reach no model.
  EXPECT_EQ(unrouted_, 4);
}

}  // namespace
}  // namespace fusion::api::ui

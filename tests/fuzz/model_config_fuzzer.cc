// libFuzzer target: a bundle's config.pbtxt, read by the server's
// runtime::LoadBundleConfig (parse, defaults, validation), then the first
// thing a load derives from an accepted config: the warm-up shapes
// (serving/warmup.h). The bytes are written to <tmp>/config.pbtxt each run
// (LoadBundleConfig reads a bundle directory; a tmpfs keeps this cheap).
// Checks: a refusal is INVALID_ARGUMENT; an accepted config holds what
// bundle_config.h promises (defaults filled, limits in range); every
// warm-up shape lies within max_batch_size and [3, max_tokens].
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "server/runtime/bundle_config.h"
#include "server/serving/warmup.h"
#include "tests/fuzz/fuzz_check.h"

namespace fusion::fuzz {
namespace {

namespace fs = std::filesystem;

// A directory of this process's own, removed at exit.
const std::string& BundleDir() {
  static const std::string* const dir = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm")
                                                 : fs::temp_directory_path();
    auto* d = new std::string(
        (base / ("fusion_config_fuzzer_" + std::to_string(getpid()))).string());
    fs::create_directories(*d);
    std::atexit([] { fs::remove_all(BundleDir()); });
    return d;
  }();
  return *dir;
}

void CheckConfig(const fusion::v1::ModelConfig& c) {
  FUZZ_CHECK(!c.name().empty() && c.version() > 0, "name/version");
  FUZZ_CHECK(c.classes_size() >= 2 && c.positive_class() >= 0 &&
                 c.positive_class() < c.classes_size(),
             "classes");
  FUZZ_CHECK(c.max_tokens() >= 3 && c.attention_heads() > 0, "limits");
  FUZZ_CHECK(c.features_size() > 0, "features");
  FUZZ_CHECK(!c.tokenizer().vocab_file().empty() &&
                 !c.tokenizer().unk_token().empty() &&
                 c.tokenizer().max_chars_per_word() != 0,
             "tokenizer defaults");
  const auto& b = c.batching();
  FUZZ_CHECK(b.max_batch_size() >= 1 && b.max_queue_size() >= 1 &&
                 b.priority_levels() >= 1 && b.max_queue_delay_us() >= 0,
             "batching limits");
  FUZZ_CHECK(c.max_message_bytes() != 0, "max_message_bytes default");
}

}  // namespace
}  // namespace fusion::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fusion;  // NOLINT: fuzz entry point
  // Each refused config is a status; protobuf's own log of why is noise.
  const google::protobuf::LogSilencer quiet;
  const std::string& dir = fuzz::BundleDir();
  {
    std::ofstream out(dir + "/config.pbtxt",
                      std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data),
              static_cast<std::streamsize>(size));
    FUZZ_CHECK(out.good(), "cannot write ", dir, "/config.pbtxt");
  }
  const auto config = runtime::LoadBundleConfig(dir);
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
               config.status().ToString());
    return 0;
  }
  fuzz::CheckConfig(*config);
  for (const serving::WarmupShape& shape : serving::WarmupShapes(*config)) {
    FUZZ_CHECK(shape.requests >= 1 &&
                   shape.requests <= config->batching().max_batch_size(),
               shape.requests, " requests");
    FUZZ_CHECK(shape.tokens >= 3 && shape.tokens <= config->max_tokens(),
               shape.tokens, " tokens");
  }
  return 0;
}

// fusion-client score --input FILE: JSON lines in, JSON lines out, in order.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/commands.h"
#include "client/connection_flags.h"
#include "client/latency_stats.h"
#include "client/progress_bar.h"
#include "client/request_json.h"
#include "client/stream_scorer.h"

ABSL_FLAG(std::string, input, "",
          "JSON-lines file of requests to score over ScoreStream ('-': stdin)");
ABSL_FLAG(std::string, output, "",
          "Where to write the JSON-lines results (default: stdout)");
ABSL_FLAG(int, max_in_flight, 512,
          "Requests on the stream awaiting their turn in the output (--input)");
ABSL_FLAG(std::string, progress, "auto",
          "Progress bar on stderr: auto (on a terminal), always, never");
ABSL_DECLARE_FLAG(std::string, attention);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::string, model_version);

namespace fusion::client {
namespace {

// Lines in a regular file, for the progress bar; -1 for a pipe.
int64_t CountLines(const std::string& path) {
  if (path == "-") return -1;
  std::ifstream in(path);
  int64_t lines = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StripAsciiWhitespace(line).empty()) ++lines;
  }
  return lines;
}

bool ProgressWanted() {
  const std::string mode = absl::GetFlag(FLAGS_progress);
  if (mode == "always") return true;
  if (mode == "never") return false;
  return isatty(fileno(stderr)) != 0;
}

// Settings the flags apply to every line (empty: keep the line's own).
struct Overrides {
  bool attention_set = false;
  fusion::v1::AttentionDetail attention = fusion::v1::ATTENTION_NONE;
  std::string model, model_version;
};

absl::StatusOr<Overrides> OverridesFromFlags() {
  Overrides overrides;
  overrides.model = absl::GetFlag(FLAGS_model);
  overrides.model_version = absl::GetFlag(FLAGS_model_version);
  if (!absl::GetFlag(FLAGS_attention).empty()) {
    auto detail = ParseAttention(absl::GetFlag(FLAGS_attention));
    if (!detail.ok()) return detail.status();
    overrides.attention_set = true;
    overrides.attention = *detail;
  }
  return overrides;
}

// --input and --output, or stdin and stdout.
struct Files {
  std::ifstream in_file;
  std::ofstream out_file;
  std::istream* in = &std::cin;
  std::ostream* out = &std::cout;
};

absl::Status OpenFiles(const std::string& input_path, Files& files) {
  if (input_path != "-") {
    files.in_file.open(input_path);
    if (!files.in_file) {
      return absl::NotFoundError(absl::StrCat("cannot read ", input_path));
    }
    files.in = &files.in_file;
  }
  const std::string output_path = absl::GetFlag(FLAGS_output);
  if (!output_path.empty() && output_path != "-") {
    files.out_file.open(output_path, std::ios::trunc);
    if (!files.out_file) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", output_path));
    }
    files.out = &files.out_file;
  }
  return absl::OkStatus();
}

// Reads request lines; a line that does not parse becomes an error item
// naming its line number. Blank lines are skipped.
class LineSource {
 public:
  LineSource(std::istream& in, Overrides overrides)
      : in_(in), overrides_(std::move(overrides)) {}

  bool operator()(StreamItem* item) {
    std::string line;
    while (std::getline(in_, line)) {
      ++line_number_;
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      absl::StatusOr<fusion::v1::ScoreRequest> request = ParseRequestLine(line);
      if (!request.ok()) {
        item->status = absl::InvalidArgumentError(absl::StrCat(
            "line ", line_number_, ": ", request.status().message()));
        return true;
      }
      Apply(*request);
      item->request = *std::move(request);
      return true;
    }
    return false;
  }

 private:
  void Apply(fusion::v1::ScoreRequest& request) const {
    if (overrides_.attention_set) request.set_attention(overrides_.attention);
    if (!overrides_.model.empty()) request.set_model(overrides_.model);
    if (!overrides_.model_version.empty()) {
      request.set_model_version(overrides_.model_version);
    }
  }

  std::istream& in_;
  const Overrides overrides_;
  int64_t line_number_ = 0;
};

void PrintSummary(const StatusCounts& counts, double seconds) {
  std::fprintf(stderr,
               "fusion-client: scored %lld requests in %.2f s (%.1f/s): %lld "
               "OK, %lld failed (%s)\n",
               static_cast<long long>(counts.total()), seconds,
               seconds > 0 ? counts.total() / seconds : 0.0,
               static_cast<long long>(counts.ok()),
               static_cast<long long>(counts.errors()),
               counts.ErrorsToString().c_str());
}

}  // namespace

int RunScoreFile(const Client& client) {
  const std::string input_path = absl::GetFlag(FLAGS_input);
  absl::StatusOr<Overrides> overrides = OverridesFromFlags();
  if (!overrides.ok()) {
    std::fprintf(stderr, "fusion-client: --%s\n",
                 std::string(overrides.status().message()).c_str());
    return kExitUsage;
  }
  Files files;
  if (absl::Status s = OpenFiles(input_path, files); !s.ok()) {
    std::fprintf(stderr, "fusion-client: %s\n",
                 std::string(s.message()).c_str());
    return kExitUsage;
  }
  // A clear message before reading any input when nothing answers.
  const absl::Duration connect_timeout =
      std::min(client.options().timeout, absl::Seconds(10));
  if (absl::Status s = client.WaitForConnected(connect_timeout); !s.ok()) {
    std::fprintf(stderr, "fusion-client: %s\n",
                 DescribeError(s, client.options()).c_str());
    return kExitUnreachable;
  }

  ProgressBar progress(stderr, CountLines(input_path), ProgressWanted());
  StatusCounts counts;
  const auto start = std::chrono::steady_clock::now();
  LineSource lines(*files.in, *std::move(overrides));
  StreamSource source = [&lines](StreamItem* item) { return lines(item); };
  StreamSink sink = [&](StreamResult&& result) {
    counts.Add(result.status.code());
    const nlohmann::json json =
        result.status.ok() ? ResponseToJson(result.response)
                           : ErrorToJson(result.request_id, result.status);
    *files.out << json.dump() << '\n';
    progress.Update(counts.total(), counts.errors());
  };
  StreamOptions stream_options;
  stream_options.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  const absl::Status stream_status =
      ScoreStreamOrdered(client, source, sink, stream_options);
  files.out->flush();
  progress.Finish();
  PrintSummary(counts, std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count());

  if (!stream_status.ok()) {
    std::fprintf(stderr, "fusion-client: the stream broke: %s\n",
                 DescribeError(stream_status, client.options()).c_str());
    return kExitUnreachable;
  }
  if (!*files.out) {
    std::fprintf(stderr, "fusion-client: writing the results failed\n");
    return kExitRequestFailed;
  }
  return counts.errors() > 0 ? kExitRequestFailed : kExitOk;
}

}  // namespace fusion::client

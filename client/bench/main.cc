// fusion-bench: a load generator for fusionserve (closed or open loop,
// unary or streaming), in the spirit of Triton's perf_analyzer.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/bench/load_loop.h"
#include "client/bench/report.h"
#include "client/bench/senders.h"
#include "client/bench/workload.h"
#include "client/connection_flags.h"

ABSL_FLAG(std::string, model, "", "Model to load (default: the server's)");
ABSL_FLAG(std::string, model_version, "", "Model version (default: latest)");
ABSL_FLAG(int, concurrency, 0,
          "Closed loop: requests kept outstanding (default 1 when --rate is "
          "not given)");
ABSL_FLAG(double, rate, 0, "Open loop: requests/s with Poisson arrivals");
ABSL_FLAG(std::string, rate_profile, "",
          "Open loop through phases of different rates, one window: "
          "RATE:DURATION,... e.g. 1000:5s,10000:30s,1000:10s (a burst); "
          "replaces --rate, --sweep and --duration, and each phase is "
          "reported on its own too");
ABSL_FLAG(absl::Duration, timeline, absl::ZeroDuration(),
          "Also report the window in slices this long (e.g. 100ms): "
          "requests and codes, and the p50/p99 of OK responses, per slice");
ABSL_FLAG(bool, timeline_latencies, false,
          "With --timeline: list every OK latency of each slice too (to take "
          "percentiles over any span afterwards)");
ABSL_FLAG(std::string, sweep, "",
          "Levels to run one after the other, e.g. 1,4,16,64: concurrencies, "
          "or rates when --rate is given; 'rate:100,200' / "
          "'concurrency:1,8' say which explicitly");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "Measurement window per level");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2),
          "Load before each window, not measured");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(15),
          "Most time to wait for outstanding requests after a window");
ABSL_FLAG(std::string, input, "models/fusion/1/golden.jsonl",
          "JSON-lines requests (golden.jsonl works as is)");
ABSL_FLAG(std::string, synthetic_lengths, "",
          "Generate requests instead of --input, token lengths from "
          "fixed:N, uniform:MIN:MAX or normal:MEAN:STD");
ABSL_FLAG(int, synthetic_count, 1000, "Generated requests in the pool");
ABSL_FLAG(int, cls_id, 2, "[CLS] id for generated requests");
ABSL_FLAG(int, sep_id, 3, "[SEP] id for generated requests");
ABSL_FLAG(double, attention_fraction, 0,
          "Share of requests asking for mean attention, 0..1");
ABSL_FLAG(std::string, mode, "unary",
          "unary (Score / ModelInfer) or stream (ScoreStream / "
          "ModelStreamInfer)");
ABSL_FLAG(std::string, protocol, "native",
          "native (fusion.v1 Score), v2 (the Open Inference Protocol: "
          "inference.GRPCInferenceService ModelInfer, each request as a v2 "
          "request of batch 1), or native,v2 to run each level with both, "
          "the same workload and arrivals, and compare");
ABSL_FLAG(bool, v2_raw, false,
          "With --protocol v2: send tensors in raw_input_contents "
          "(little-endian) instead of typed contents");
ABSL_FLAG(int, streams, 4, "Streams in --mode=stream");
ABSL_FLAG(int, channels, 1, "gRPC channels, each with its own connections");
ABSL_FLAG(int, max_outstanding, 20000,
          "Open loop: the generator waits when this many are outstanding");
ABSL_FLAG(uint64_t, seed, 1, "Random seed (arrivals, request choice)");
ABSL_FLAG(std::string, json, "", "Also write the results as JSON here");

namespace fusion::bench {
namespace {

constexpr char kUsage[] = R"(fusion-bench [flags]

Closed loop:  fusion-bench --target host:port --concurrency 64 --duration 10s
Open loop:    fusion-bench --target host:port --rate 500 --duration 10s
Burst:        fusion-bench --rate_profile 1000:5s,10000:30s,1000:10s --timeline 100ms
Sweep:        fusion-bench --sweep 1,4,16,64   |   --rate 1 --sweep 100,200,400
Balancing:    fusion-bench --target ipv4:10.0.0.1:50051,10.0.0.2:50051 --lb round_robin
Workload:     --input golden.jsonl | --synthetic_lengths uniform:8:64
              --attention_fraction 0.1  --mode unary|stream
Protocol:     --protocol native|v2|native,v2  [--v2_raw])";

int Usage(const std::string& message) {
  std::fprintf(stderr, "fusion-bench: %s\n", message.c_str());
  return 2;
}

// The levels to run and whether they are rates.
absl::Status ParseLevels(bool* open_loop, std::vector<double>* levels) {
  const double rate = absl::GetFlag(FLAGS_rate);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  if (const std::string profile = absl::GetFlag(FLAGS_rate_profile);
      !profile.empty()) {
    if (rate != 0 || concurrency != 0 || !absl::GetFlag(FLAGS_sweep).empty()) {
      return absl::InvalidArgumentError(
          "--rate_profile replaces --rate, --concurrency and --sweep");
    }
    absl::StatusOr<std::vector<RatePhase>> phases = ParseRateProfile(profile);
    if (!phases.ok()) return phases.status();
    *open_loop = true;
    levels->push_back(phases->front().rate);
    return absl::OkStatus();
  }
  if (rate > 0 && concurrency > 0) {
    return absl::InvalidArgumentError(
        "give --concurrency (closed loop) or --rate (open loop), not both");
  }
  if (rate < 0 || concurrency < 0) {
    return absl::InvalidArgumentError("--rate and --concurrency must be >= 0");
  }
  *open_loop = rate > 0;
  std::string sweep = absl::GetFlag(FLAGS_sweep);
  if (absl::StartsWith(sweep, "rate:")) {
    *open_loop = true;
    sweep = sweep.substr(5);
  } else if (absl::StartsWith(sweep, "concurrency:")) {
    *open_loop = false;
    sweep = sweep.substr(12);
  }
  if (sweep.empty()) {
    levels->push_back(*open_loop ? rate : std::max(concurrency, 1));
    return absl::OkStatus();
  }
  for (absl::string_view part : absl::StrSplit(sweep, ',')) {
    double v;
    if (!absl::SimpleAtod(part, &v) || v <= 0 ||
        (!*open_loop && v != static_cast<int>(v))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sweep '", part, "': expected a positive ",
                       *open_loop ? "rate" : "integer concurrency"));
    }
    levels->push_back(v);
  }
  return absl::OkStatus();
}

// The protocols to run, in order ("native", "v2").
absl::StatusOr<std::vector<std::string>> ParseProtocols() {
  std::vector<std::string> protocols;
  for (absl::string_view p :
       absl::StrSplit(absl::GetFlag(FLAGS_protocol), ',')) {
    if (p != "native" && p != "v2") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--protocol '", p, "': expected native, v2 or native,v2"));
    }
    if (std::find(protocols.begin(), protocols.end(), p) != protocols.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--protocol names '", p, "' twice"));
    }
    protocols.emplace_back(p);
  }
  return protocols;
}

absl::StatusOr<Workload> MakeWorkload(const fusion::Client& client,
                                      bool with_v2) {
  const std::string lengths = absl::GetFlag(FLAGS_synthetic_lengths);
  absl::StatusOr<Workload> workload;
  // The model's metadata, once: for generated requests, and for the v2
  // form (the feature order of FEATURES, the model name).
  absl::StatusOr<fusion::v1::ModelMetadata> metadata;
  if (!lengths.empty() || with_v2) {
    metadata = client.GetModelMetadata(absl::GetFlag(FLAGS_model),
                                       absl::GetFlag(FLAGS_model_version));
    if (!metadata.ok() && lengths.empty() &&
        metadata.status().code() == absl::StatusCode::kNotFound) {
      // An unknown --model (to measure the error path, as native requests
      // can): v2 requests still need a feature order; take the default
      // model's, and let the server answer NOT_FOUND.
      absl::StatusOr<fusion::v1::ModelMetadata> fallback =
          client.GetModelMetadata();
      if (fallback.ok()) {
        std::fprintf(stderr,
                     "fusion-bench: %s; v2 requests take the feature order "
                     "of the server's default model '%s'\n",
                     std::string(metadata.status().message()).c_str(),
                     fallback->name().c_str());
        metadata = *std::move(fallback);
      }
    }
    if (!metadata.ok()) return metadata.status();
  }
  if (lengths.empty()) {
    workload = Workload::FromJsonLines(absl::GetFlag(FLAGS_input));
  } else {
    absl::StatusOr<LengthDistribution> distribution =
        ParseLengthDistribution(lengths);
    if (!distribution.ok()) return distribution.status();
    SyntheticSpec spec;
    spec.lengths = *distribution;
    spec.count = absl::GetFlag(FLAGS_synthetic_count);
    spec.seed = absl::GetFlag(FLAGS_seed);
    spec.cls_id = absl::GetFlag(FLAGS_cls_id);
    spec.sep_id = absl::GetFlag(FLAGS_sep_id);
    workload = Workload::Synthetic(spec, *metadata);
  }
  if (!workload.ok()) return workload;
  workload->SetModel(absl::GetFlag(FLAGS_model),
                     absl::GetFlag(FLAGS_model_version));
  if (with_v2) {
    client::V2Options options;
    options.raw = absl::GetFlag(FLAGS_v2_raw);
    if (absl::Status s = workload->ConvertToV2(
            client::V2ModelInfoFromMetadata(*metadata), options);
        !s.ok()) {
      return s;
    }
  }
  return workload;
}

absl::Status ValidateFlags() {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const double fraction = absl::GetFlag(FLAGS_attention_fraction);
  if (mode != "unary" && mode != "stream") {
    return absl::InvalidArgumentError("--mode must be unary or stream");
  }
  if (fraction < 0 || fraction > 1) {
    return absl::InvalidArgumentError("--attention_fraction must be in [0, 1]");
  }
  if (absl::GetFlag(FLAGS_channels) < 1 || absl::GetFlag(FLAGS_streams) < 1) {
    return absl::InvalidArgumentError("--channels and --streams must be >= 1");
  }
  if (absl::GetFlag(FLAGS_duration) <= absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_warmup) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--duration must be > 0 and --warmup >= 0");
  }
  if (absl::GetFlag(FLAGS_timeline) < absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_timeline) == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("--timeline must be finite and >= 0");
  }
  if (absl::GetFlag(FLAGS_timeline_latencies) &&
      absl::GetFlag(FLAGS_timeline) == absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeline_latencies needs --timeline");
  }
  return absl::OkStatus();
}

// --channels clients; with more than one, each has its own connections.
absl::StatusOr<std::vector<std::unique_ptr<fusion::Client>>> MakeClients(
    const fusion::ClientOptions& options) {
  const int channels = absl::GetFlag(FLAGS_channels);
  std::vector<std::unique_ptr<fusion::Client>> clients;
  for (int i = 0; i < channels; ++i) {
    fusion::ClientOptions channel_options = options;
    channel_options.connection.private_channel_id = channels > 1 ? i : -1;
    auto client = fusion::Client::Create(channel_options);
    if (!client.ok()) return client.status();
    clients.push_back(*std::move(client));
  }
  return clients;
}

// --rate_profile's phases (checked in ParseLevels), or none.
std::vector<RatePhase> RateProfile() {
  const std::string profile = absl::GetFlag(FLAGS_rate_profile);
  if (profile.empty()) return {};
  return *ParseRateProfile(profile);
}

// A level's window: --duration, or the sum of the profile's phases.
absl::Duration WindowDuration() {
  const std::vector<RatePhase> profile = RateProfile();
  if (profile.empty()) return absl::GetFlag(FLAGS_duration);
  absl::Duration sum;
  for (const RatePhase& phase : profile) sum += phase.duration;
  return sum;
}

LoadSpec SpecFor(bool open_loop, double level, uint64_t index) {
  LoadSpec spec;
  spec.open_loop = open_loop;
  spec.rate = open_loop ? level : 0;
  spec.concurrency = open_loop ? 0 : static_cast<int>(level);
  spec.warmup = absl::GetFlag(FLAGS_warmup);
  spec.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  spec.max_outstanding = absl::GetFlag(FLAGS_max_outstanding);
  spec.attention_fraction = absl::GetFlag(FLAGS_attention_fraction);
  spec.seed = absl::GetFlag(FLAGS_seed) + index;
  spec.timeline_bucket = absl::GetFlag(FLAGS_timeline);
  spec.timeline_latencies = absl::GetFlag(FLAGS_timeline_latencies);
  spec.rate_profile = RateProfile();
  spec.duration = WindowDuration();
  return spec;
}

BenchConfig ConfigFor(const fusion::ClientOptions& options, bool open_loop,
                      const Workload& workload,
                      const std::vector<std::string>& protocols) {
  BenchConfig config;
  config.target = options.connection.target;
  config.lb = options.connection.lb_policy;
  config.model = absl::GetFlag(FLAGS_model);
  config.mode = absl::GetFlag(FLAGS_mode);
  config.protocol = absl::StrJoin(protocols, ",");
  config.v2_raw = absl::GetFlag(FLAGS_v2_raw);
  config.open_loop = open_loop;
  const std::string lengths = absl::GetFlag(FLAGS_synthetic_lengths);
  config.workload = lengths.empty() ? workload.description()
                                    : absl::StrCat(workload.description(),
                                                   ", lengths ", lengths);
  config.warmup_s = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_warmup));
  config.duration_s = absl::ToDoubleSeconds(WindowDuration());
  config.rate_profile = absl::GetFlag(FLAGS_rate_profile);
  config.timeline_s = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_timeline));
  config.attention_fraction = absl::GetFlag(FLAGS_attention_fraction);
  config.channels = absl::GetFlag(FLAGS_channels);
  config.streams = absl::GetFlag(FLAGS_streams);
  return config;
}

// Prints the table, writes --json; 0 when at least one request succeeded.
int Report(const BenchConfig& config, const std::vector<LevelResult>& results) {
  PrintTable(stdout, config, results);
  const nlohmann::json report = ReportJson(config, results);
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path, std::ios::trunc);
    out << report.dump(2) << '\n';
    if (!out) {
      std::fprintf(stderr, "fusion-bench: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return report["totals"]["ok"].get<int64_t>() > 0 ? 0 : 1;
}

int Run(const std::vector<std::string>& headers) {
  bool open_loop = false;
  std::vector<double> levels;
  if (absl::Status s = ParseLevels(&open_loop, &levels); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (absl::Status s = ValidateFlags(); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  absl::StatusOr<std::vector<std::string>> protocols = ParseProtocols();
  if (!protocols.ok()) return Usage(std::string(protocols.status().message()));
  const bool with_v2 =
      std::find(protocols->begin(), protocols->end(), "v2") != protocols->end();
  if (absl::GetFlag(FLAGS_v2_raw) && !with_v2) {
    return Usage("--v2_raw is for --protocol v2");
  }
  absl::StatusOr<fusion::ClientOptions> options =
      client::ClientOptionsFromFlags(headers);
  if (!options.ok()) return Usage(std::string(options.status().message()));
  auto owned = MakeClients(*options);
  if (!owned.ok()) return Usage(std::string(owned.status().message()));
  std::vector<const fusion::Client*> clients;
  for (const auto& c : *owned) clients.push_back(c.get());

  for (const fusion::Client* c : clients) {
    if (absl::Status s = c->WaitForConnected(options->timeout); !s.ok()) {
      std::fprintf(stderr, "fusion-bench: %s\n",
                   client::DescribeError(s, *options).c_str());
      return 3;
    }
  }
  absl::StatusOr<Workload> workload = MakeWorkload(*clients.front(), with_v2);
  if (!workload.ok()) {
    std::fprintf(stderr, "fusion-bench: %s\n",
                 client::DescribeError(workload.status(), *options).c_str());
    return workload.status().code() == absl::StatusCode::kUnavailable ? 3 : 2;
  }

  const bool unary = absl::GetFlag(FLAGS_mode) == "unary";
  const int streams = absl::GetFlag(FLAGS_streams);
  auto factory = [&](bool v2) -> SenderFactory {
    return [&, v2](OutcomeHandler handler, absl::Time deadline) {
      if (v2) {
        return unary ? MakeV2UnarySender(clients, std::move(handler))
                     : MakeV2StreamSender(clients, streams, deadline,
                                          std::move(handler));
      }
      return unary ? MakeUnarySender(clients, std::move(handler))
                   : MakeStreamSender(clients, streams, deadline,
                                      std::move(handler));
    };
  };
  std::vector<LevelResult> results;
  for (size_t i = 0; i < levels.size(); ++i) {
    // The same spec (seed included) for each protocol of a level.
    const LoadSpec spec = SpecFor(open_loop, levels[i], i);
    for (const std::string& protocol : *protocols) {
      std::fprintf(
          stderr, "fusion-bench: %s %g (%s) for %s after %s warmup...\n",
          open_loop ? "rate" : "concurrency", levels[i], protocol.c_str(),
          absl::FormatDuration(spec.duration).c_str(),
          absl::FormatDuration(spec.warmup).c_str());
      results.push_back(RunLevel(factory(protocol == "v2"), *workload, spec));
      results.back().protocol = protocol;
    }
  }
  return Report(ConfigFor(*options, open_loop, *workload, *protocols), results);
}

}  // namespace
}  // namespace fusion::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(fusion::bench::kUsage);
  std::vector<std::vector<std::string>> repeated;
  const std::vector<std::string> positional =
      fusion::client::ParseCommandLineKeepingRepeated(argc, argv, {"header"},
                                                      repeated);
  if (positional.size() > 1) {
    return fusion::bench::Usage(
        absl::StrCat("unexpected argument '", positional[1], "'"));
  }
  return fusion::bench::Run(repeated[0]);
}

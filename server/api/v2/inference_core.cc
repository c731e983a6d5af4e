#include "server/api/v2/inference_core.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/api/model_signature.h"
#include "server/api/request_outcome.h"
#include "server/api/request_validation.h"
#include "server/api/v2/infer_tensors.h"

namespace fusion::api::v2 {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

constexpr char kText[] = "TEXT";
constexpr char kInputIds[] = "INPUT_IDS";
constexpr char kAttentionMask[] = "ATTENTION_MASK";
constexpr char kFeatures[] = "FEATURES";
constexpr char kProbabilities[] = "PROBABILITIES";
constexpr char kScore[] = "SCORE";
constexpr char kTextToFeatures[] = "TEXT_TO_FEATURES_ATTENTION";
constexpr char kFeaturesToText[] = "FEATURES_TO_TEXT_ATTENTION";
constexpr char kTokenCount[] = "TOKEN_COUNT";
// What ModelMetadata calls the platform: Triton's name for TorchScript.
constexpr char kPlatform[] = "pytorch_libtorch";

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(what);
}

// The outputs asked for, in order; attention per head or mean per output.
struct OutputPlan {
  struct Output {
    std::string name;
    bool per_head = false;
  };
  std::vector<Output> outputs;
  bool attention = false;     // an attention output is asked for
  bool any_per_head = false;  // ... per head
  bool token_count = false;   // TOKEN_COUNT named
};

absl::StatusOr<OutputPlan> PlanOutputs(const ModelInferRequest& request) {
  OutputPlan plan;
  if (request.outputs().empty()) {
    plan.outputs = {{kProbabilities}, {kScore}};
    return plan;
  }
  for (const auto& output : request.outputs()) {
    const std::string& name = output.name();
    const bool attention = name == kTextToFeatures || name == kFeaturesToText;
    if (!attention && name != kProbabilities && name != kScore &&
        name != kTokenCount) {
      return Invalid(absl::StrCat("outputs: unknown output '",
                                  QuoteClientText(name), "' (", kProbabilities,
                                  ", ", kScore, ", ", kTextToFeatures, ", ",
                                  kFeaturesToText, ", ", kTokenCount, ")"));
    }
    OutputPlan::Output planned{name};
    if (auto it = output.parameters().find("attention");
        it != output.parameters().end()) {
      const auto& value = it->second;
      if (!attention ||
          value.parameter_choice_case() !=
              inference::InferParameter::kStringParam ||
          (value.string_param() != "mean" &&
           value.string_param() != "per_head")) {
        return Invalid(
            absl::StrCat("outputs['", name, "'].parameters['attention']: ",
                         attention ? "expected \"mean\" or \"per_head\""
                                   : "only for the attention outputs"));
      }
      planned.per_head = value.string_param() == "per_head";
    }
    plan.attention |= attention;
    plan.any_per_head |= planned.per_head;
    plan.token_count |= name == kTokenCount;
    plan.outputs.push_back(std::move(planned));
  }
  if (plan.token_count && !plan.attention) {
    return Invalid(absl::StrCat("outputs: ", kTokenCount,
                                " comes with an attention output"));
  }
  return plan;
}

// An integer request parameter, if present.
absl::StatusOr<std::optional<int64_t>> IntParameter(
    const ModelInferRequest& request, const std::string& key) {
  const auto it = request.parameters().find(key);
  if (it == request.parameters().end()) return std::nullopt;
  switch (it->second.parameter_choice_case()) {
    case inference::InferParameter::kInt64Param:
      if (it->second.int64_param() >= 0) return it->second.int64_param();
      break;
    case inference::InferParameter::kUint64Param:
      if (it->second.uint64_param() <=
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(it->second.uint64_param());
      }
      break;
    default:
      break;
  }
  return Invalid(
      absl::StrCat("parameters['", key, "']: expected a non-negative integer"));
}

// The inputs by name, each checked alone (datatype, element count).
struct Inputs {
  std::optional<InputTensor> text, ids, mask, features;
  bool raw = false;
};

absl::StatusOr<Inputs> ReadInputs(const ModelInferRequest& request) {
  Inputs inputs;
  inputs.raw = !request.raw_input_contents().empty();
  if (inputs.raw &&
      request.raw_input_contents_size() != request.inputs_size()) {
    return Invalid(absl::StrCat(
        "raw_input_contents: ", request.raw_input_contents_size(),
        " entries for ", request.inputs_size(), " inputs (one each, or none)"));
  }
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& tensor = request.inputs(i);
    std::optional<InputTensor>* slot = nullptr;
    if (tensor.name() == kText) slot = &inputs.text;
    if (tensor.name() == kInputIds) slot = &inputs.ids;
    if (tensor.name() == kAttentionMask) slot = &inputs.mask;
    if (tensor.name() == kFeatures) slot = &inputs.features;
    if (slot == nullptr) {
      return Invalid(absl::StrCat("inputs: unknown input '",
                                  QuoteClientText(tensor.name()), "' (", kText,
                                  " or ", kInputIds, " [+ ", kAttentionMask,
                                  "], and ", kFeatures, ")"));
    }
    if (slot->has_value()) {
      return Invalid(absl::StrCat("inputs: '", tensor.name(), "' given twice"));
    }
    if (inputs.raw && tensor.has_contents()) {
      return Invalid(absl::StrCat(tensor.name(),
                                  ": typed contents alongside "
                                  "raw_input_contents"));
    }
    auto view = InputTensor::Make(
        tensor, inputs.raw ? &request.raw_input_contents(i) : nullptr);
    if (!view.ok()) return view.status();
    slot->emplace(std::move(*view));
  }
  return inputs;
}

absl::Status ExpectDatatype(const InputTensor& tensor,
                            std::initializer_list<const char*> allowed) {
  for (const char* datatype : allowed) {
    if (tensor.datatype() == datatype) return absl::OkStatus();
  }
  std::string names;
  for (const char* datatype : allowed) {
    absl::StrAppend(&names, names.empty() ? "" : " or ", datatype);
  }
  return Invalid(absl::StrCat(tensor.name(), ": datatype ", tensor.datatype(),
                              ", expected ", names));
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    absl::StrAppend(&text, i ? "," : "", shape[i]);
  }
  return text + "]";
}

// The tensors' shapes and types against the model: returns B.
absl::StatusOr<int64_t> CheckShapes(const Inputs& in,
                                    const fusion::v1::ModelConfig& config) {
  if (in.text.has_value() == in.ids.has_value()) {
    return Invalid(absl::StrCat("inputs: give exactly one of ", kText, " and ",
                                kInputIds, in.text ? " (both given)" : ""));
  }
  if (in.mask && !in.ids) {
    return Invalid(absl::StrCat(kAttentionMask, ": only with ", kInputIds));
  }
  if (!in.features) return Invalid(absl::StrCat("inputs: missing ", kFeatures));
  int64_t rows = 0;
  if (in.text) {
    if (absl::Status s = ExpectDatatype(*in.text, {"BYTES"}); !s.ok()) return s;
    const auto& shape = in.text->shape();
    if (shape.empty() || shape.size() > 2 ||
        (shape.size() == 2 && shape[1] != 1)) {
      return Invalid(absl::StrCat(kText, ": shape ", ShapeText(shape),
                                  ", expected [B] or [B,1]"));
    }
    rows = shape[0];
  } else {
    if (absl::Status s = ExpectDatatype(*in.ids, {"INT64", "INT32"}); !s.ok()) {
      return s;
    }
    if (in.ids->shape().size() != 2) {
      return Invalid(absl::StrCat(kInputIds, ": shape ",
                                  ShapeText(in.ids->shape()),
                                  ", expected [B,L]"));
    }
    rows = in.ids->shape()[0];
    if (in.mask) {
      if (in.mask->datatype() != in.ids->datatype() ||
          in.mask->shape() != in.ids->shape()) {
        return Invalid(absl::StrCat(
            kAttentionMask, ": ", in.mask->datatype(), " ",
            ShapeText(in.mask->shape()), ", expected ", kInputIds, "'s ",
            in.ids->datatype(), " ", ShapeText(in.ids->shape())));
      }
    }
  }
  if (absl::Status s = ExpectDatatype(*in.features, {"FP32"}); !s.ok()) {
    return s;
  }
  const std::vector<int64_t>& shape = in.features->shape();
  if (shape.size() != 2 || shape[1] != config.features_size()) {
    return Invalid(absl::StrCat(kFeatures, ": shape ", ShapeText(shape),
                                ", expected [B,", config.features_size(),
                                "] (features in ModelMetadata order)"));
  }
  if (shape[0] != rows) {
    return Invalid(absl::StrCat(kFeatures, ": ", shape[0], " rows, ",
                                in.text ? kText : kInputIds, " has ", rows));
  }
  if (rows < 1) return Invalid("inputs: a batch of 0 rows");
  if (rows > config.batching().max_batch_size()) {
    return Invalid(absl::StrCat("inputs: a batch of ", rows,
                                " rows; the model takes at most ",
                                config.batching().max_batch_size()));
  }
  return rows;
}

// Row `r` as a native request, so that both APIs validate alike. What the
// native request cannot express (an id past int32, a row with no ids) is
// refused here, naming INPUT_IDS and the row.
absl::StatusOr<fusion::v1::ScoreRequest> RowRequest(const Inputs& in, int64_t r,
                                                    int64_t features,
                                                    const OutputPlan& plan,
                                                    int priority,
                                                    int32_t vocab_size) {
  fusion::v1::ScoreRequest row;
  if (in.text) {
    row.set_text(std::string(in.text->Bytes(r)));
  } else {
    const int64_t length = in.ids->shape()[1];
    for (int64_t j = 0; j < length; ++j) {
      const int64_t at = r * length + j;
      if (in.mask && in.mask->Int(at) == 0) continue;
      const int64_t id = in.ids->Int(at);
      if (id < std::numeric_limits<int32_t>::min() ||
          id > std::numeric_limits<int32_t>::max()) {
        return Invalid(
            absl::StrCat(kInputIds, " row ", r, ": id ", id, " at column ", j,
                         " is outside the vocabulary [0, ", vocab_size, ")"));
      }
      row.add_token_ids(static_cast<int32_t>(id));
    }
    if (row.token_ids().empty()) {
      return Invalid(
          absl::StrCat(kInputIds, " row ", r, ": no ids (L is 0",
                       in.mask ? ", or the row's ATTENTION_MASK is all 0" : "",
                       "); a row holds its [CLS] ... [SEP] ids"));
    }
  }
  for (int64_t f = 0; f < features; ++f) {
    row.add_feature_vector(in.features->Float(r * features + f));
  }
  if (plan.attention) {
    row.set_attention(plan.any_per_head ? fusion::v1::ATTENTION_PER_HEAD
                                        : fusion::v1::ATTENTION_MEAN);
  }
  row.set_priority(priority);
  return row;
}

// A native validation message, prefixed with the tensor and row it is about.
std::string RowError(absl::string_view message, int64_t row) {
  const char* tensor = "inputs";
  if (absl::StartsWith(message, "token_ids")) tensor = kInputIds;
  if (absl::StartsWith(message, "text")) tensor = kText;
  if (absl::StartsWith(message, "feature")) tensor = kFeatures;
  if (absl::StartsWith(message, "priority")) tensor = "parameters['priority']";
  return absl::StrCat(tensor, " row ", row, ": ", message);
}

// One ModelInfer request in flight: its rows' results, answered once.
struct InferCall {
  std::shared_ptr<serving::Servable> model;
  std::string id;
  bool raw = false;
  OutputPlan plan;
  absl::Time arrival;
  InferenceCore::InferDone done;
  std::atomic<bool> failed{false};  // rows still queued are dropped
  absl::Mutex mu;
  int64_t remaining ABSL_GUARDED_BY(mu) = 0;
  std::vector<serving::ScoringResult> results ABSL_GUARDED_BY(mu);
};

// [rows, heads?, a, b] from each row's [heads?, a, b], zero-padded along the
// token axis (`token_axis_last`: b is tokens, else a), averaged over heads
// when the row has them and the output is not per head.
std::pair<std::vector<int64_t>, std::vector<float>> PadAttention(
    const std::vector<serving::ScoringResult>& results, bool text_to_features,
    bool per_head, int heads, int features, int max_tokens) {
  const int64_t rows = static_cast<int64_t>(results.size());
  const int out_heads = per_head ? heads : 1;
  const int64_t a = text_to_features ? max_tokens : features;
  const int64_t b = text_to_features ? features : max_tokens;
  std::vector<float> data(rows * out_heads * a * b, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const runtime::ScoringOutput& out = results[r].output;
    const auto& values =
        text_to_features ? out.text_to_features : out.features_to_text;
    const auto& shape = text_to_features ? out.text_to_features_shape
                                         : out.features_to_text_shape;
    const bool row_per_head = shape.size() == 3;
    const int row_heads = row_per_head ? shape[0] : 1;
    const int64_t row_a = shape[shape.size() - 2];
    const int64_t row_b = shape[shape.size() - 1];
    for (int h = 0; h < row_heads; ++h) {
      const int out_h = per_head ? h : 0;
      const float weight = per_head ? 1.0f : 1.0f / row_heads;
      for (int64_t i = 0; i < row_a; ++i) {
        for (int64_t j = 0; j < row_b; ++j) {
          data[((r * out_heads + out_h) * a + i) * b + j] +=
              weight * values[(h * row_a + i) * row_b + j];
        }
      }
    }
  }
  std::vector<int64_t> shape = {rows};
  if (per_head) shape.push_back(heads);
  shape.push_back(a);
  shape.push_back(b);
  return {std::move(shape), std::move(data)};
}

ModelInferResponse BuildResponse(const InferCall& call,
                                 const std::vector<serving::ScoringResult>& r) {
  const fusion::v1::ModelConfig& config = call.model->config();
  ModelInferResponse response;
  response.set_model_name(config.name());
  response.set_model_version(call.model->version());
  response.set_id(call.id);
  const int64_t rows = static_cast<int64_t>(r.size());
  const int64_t classes = config.classes_size();
  std::vector<int32_t> token_counts;
  int max_tokens = 0;
  for (const serving::ScoringResult& result : r) {
    const auto& shape = result.output.text_to_features_shape;
    const int tokens = shape.empty() ? 0 : shape[shape.size() - 2];
    token_counts.push_back(tokens);
    max_tokens = std::max(max_tokens, tokens);
  }
  for (const OutputPlan::Output& output : call.plan.outputs) {
    if (output.name == kProbabilities) {
      std::vector<float> data;
      for (const auto& result : r) {
        data.insert(data.end(), result.output.probabilities.begin(),
                    result.output.probabilities.end());
      }
      AddFp32Output(kProbabilities, {rows, classes}, data, call.raw, response);
    } else if (output.name == kScore) {
      std::vector<float> data;
      for (const auto& result : r) {
        data.push_back(result.output.probabilities.at(config.positive_class()));
      }
      AddFp32Output(kScore, {rows}, data, call.raw, response);
    } else if (output.name == kTokenCount) {
      AddInt32Output(kTokenCount, {rows}, token_counts, call.raw, response);
    } else {
      auto [shape, data] = PadAttention(
          r, output.name == kTextToFeatures, output.per_head,
          config.attention_heads(), config.features_size(), max_tokens);
      AddFp32Output(output.name, std::move(shape), data, call.raw, response);
    }
  }
  if (call.plan.attention && !call.plan.token_count) {
    AddInt32Output(kTokenCount, {rows}, token_counts, call.raw, response);
  }
  return response;
}

// A row's answer: the call is answered on the first failure, or with the
// last row.
void OnRowDone(const std::shared_ptr<InferCall>& call, int64_t row,
               absl::StatusOr<serving::ScoringResult> result) {
  std::vector<serving::ScoringResult> results;
  {
    absl::MutexLock lock(&call->mu);
    if (call->failed.load()) return;
    if (!result.ok()) {
      call->failed.store(true);
    } else {
      call->results[row] = std::move(*result);
      if (--call->remaining > 0) return;
      results = std::move(call->results);
    }
  }
  const absl::Duration total = absl::Now() - call->arrival;
  if (!result.ok()) {
    RecordFailure(*call->model, result.status().code(), total);
    call->done(result.status());
    return;
  }
  // The slowest row stands for the request in the counters.
  const serving::TaskTiming* slowest = &results.front().timing;
  for (const auto& each : results) {
    if (each.timing.queue_us + each.timing.compute_us >
        slowest->queue_us + slowest->compute_us) {
      slowest = &each.timing;
    }
  }
  RecordSuccess(*call->model, total, *slowest,
                static_cast<int>(results.size()));
  call->done(BuildResponse(*call, results));
}

inference::ModelMetadataResponse::TensorMetadata Tensor(
    const char* name, const char* datatype, std::vector<int64_t> shape) {
  inference::ModelMetadataResponse::TensorMetadata tensor;
  tensor.set_name(name);
  tensor.set_datatype(datatype);
  tensor.mutable_shape()->Add(shape.begin(), shape.end());
  return tensor;
}

// The model's tensors, the batch dimension first (-1: variable).
std::vector<inference::ModelMetadataResponse::TensorMetadata> InputTensors(
    const fusion::v1::ModelConfig& config) {
  return {Tensor(kText, "BYTES", {-1}), Tensor(kInputIds, "INT64", {-1, -1}),
          Tensor(kAttentionMask, "INT64", {-1, -1}),
          Tensor(kFeatures, "FP32", {-1, config.features_size()})};
}

std::vector<inference::ModelMetadataResponse::TensorMetadata> OutputTensors(
    const fusion::v1::ModelConfig& config) {
  return {Tensor(kProbabilities, "FP32", {-1, config.classes_size()}),
          Tensor(kScore, "FP32", {-1}),
          Tensor(kTextToFeatures, "FP32", {-1, -1, config.features_size()}),
          Tensor(kFeaturesToText, "FP32", {-1, config.features_size(), -1}),
          Tensor(kTokenCount, "INT32", {-1})};
}

inference::DataType ConfigDatatype(const std::string& datatype) {
  if (datatype == "BYTES") return inference::TYPE_STRING;
  if (datatype == "INT64") return inference::TYPE_INT64;
  if (datatype == "INT32") return inference::TYPE_INT32;
  return inference::TYPE_FP32;
}

void FillDuration(const serving::DurationTotal& from,
                  inference::StatisticDuration& to) {
  to.set_count(from.count);
  to.set_ns(from.ns);
}

inference::ModelStatistics Statistics(const serving::Servable& servable) {
  const serving::InferenceStatsSnapshot s = servable.stats().Read();
  inference::ModelStatistics stats;
  stats.set_name(servable.config().name());
  stats.set_version(servable.version());
  stats.set_last_inference(s.last_inference_ms);
  stats.set_inference_count(s.inference_count);
  stats.set_execution_count(s.execution_count);
  auto* inference = stats.mutable_inference_stats();
  FillDuration(s.success, *inference->mutable_success());
  FillDuration(s.fail, *inference->mutable_fail());
  FillDuration(s.queue, *inference->mutable_queue());
  FillDuration(s.compute_input, *inference->mutable_compute_input());
  FillDuration(s.compute_infer, *inference->mutable_compute_infer());
  inference->mutable_compute_output()->set_count(s.compute_infer.count);
  for (const auto& [size, totals] : s.batches) {
    auto* batch = stats.add_batch_stats();
    batch->set_batch_size(static_cast<uint64_t>(size));
    FillDuration(totals.compute_input, *batch->mutable_compute_input());
    FillDuration(totals.compute_infer, *batch->mutable_compute_infer());
    batch->mutable_compute_output()->set_count(totals.compute_infer.count);
  }
  return stats;
}

}  // namespace

InferenceCore::InferenceCore(const serving::ServingState* state,
                             UnroutedFn on_unrouted, std::string server_version)
    : state_(state),
      on_unrouted_(std::move(on_unrouted)),
      server_version_(std::move(server_version)) {}

absl::Status InferenceCore::Unrouted(absl::Status status) const {
  if (on_unrouted_) on_unrouted_(status.code());
  return status;
}

void InferenceCore::Infer(const ModelInferRequest& request, absl::Time deadline,
                          std::function<bool()> cancelled,
                          InferDone done) const {
  const absl::Time arrival = absl::Now();
  auto registry = state_->AdmittingRegistry();
  if (!registry.ok()) return done(Unrouted(registry.status()));
  auto found = (*registry)->Find(request.model_name(), request.model_version());
  if (!found.ok()) return done(Unrouted(found.status()));
  auto call = std::make_shared<InferCall>();
  call->model = std::move(*found);
  call->id = request.id();
  call->arrival = arrival;
  call->done = std::move(done);
  serving::Servable& model = *call->model;
  model.observer().OnRequestStarted();
  const auto refuse = [&](absl::Status status) {
    RecordFailure(model, status.code(), absl::Now() - arrival);
    call->done(std::move(status));
  };

  // Under overload most requests are refused: before reading tensors.
  if (absl::Status room = model.CheckRoom(); !room.ok()) return refuse(room);
  if (absl::Status s = CheckWireTypes(request); !s.ok()) return refuse(s);
  auto priority = IntParameter(request, "priority");
  if (!priority.ok()) return refuse(priority.status());
  // In Triton's terms here (1..N; 0 the default); rows check the level.
  if (const int levels = model.config().batching().priority_levels();
      priority->value_or(0) > levels) {
    return refuse(Invalid(absl::StrCat(
        "parameters['priority']: ", **priority, " is beyond the model's ",
        levels, " levels (1 is the highest, 0 the default)")));
  }
  auto timeout = IntParameter(request, "timeout");
  if (!timeout.ok()) return refuse(timeout.status());
  auto plan = PlanOutputs(request);
  if (!plan.ok()) return refuse(plan.status());
  call->plan = std::move(*plan);
  auto inputs = ReadInputs(request);
  if (!inputs.ok()) return refuse(inputs.status());
  call->raw = inputs->raw;
  const fusion::v1::ModelConfig& config = model.config();
  auto rows = CheckShapes(*inputs, config);
  if (!rows.ok()) return refuse(rows.status());

  // Triton's priority: 0 is the default level, 1 the highest; ours: 0 is
  // the highest and the native default.
  const int level =
      static_cast<int>(std::max<int64_t>(0, priority->value_or(0) - 1));
  const ModelSignature signature = SignatureOf(model);
  std::vector<ValidatedRequest> validated;
  validated.reserve(*rows);
  for (int64_t r = 0; r < *rows; ++r) {
    auto request_row =
        RowRequest(*inputs, r, config.features_size(), call->plan, level,
                   signature.tokenizer.vocab_size());
    if (!request_row.ok()) return refuse(request_row.status());
    auto row = ValidateScoreRequest(*request_row, signature);
    if (!row.ok()) {
      return refuse(Invalid(RowError(row.status().message(), r)));
    }
    validated.push_back(std::move(*row));
  }

  if (timeout->has_value()) {
    deadline = std::min(deadline, arrival + absl::Microseconds(**timeout));
  } else if (deadline == absl::InfiniteFuture() &&
             config.batching().default_timeout_us() > 0) {
    deadline =
        arrival + absl::Microseconds(config.batching().default_timeout_us());
  }
  {
    absl::MutexLock lock(&call->mu);
    call->remaining = *rows;
    call->results.resize(*rows);
  }
  // Rows of a failed call are dropped from the queue as if cancelled.
  auto dropped = [call, cancelled = std::move(cancelled)] {
    return call->failed.load() || (cancelled && cancelled());
  };
  for (int64_t r = 0; r < *rows && !call->failed.load(); ++r) {
    auto task = std::make_unique<serving::ScoringTask>(
        std::move(validated[r].input), arrival, deadline, dropped,
        [call, r](absl::StatusOr<serving::ScoringResult> result) {
          OnRowDone(call, r, std::move(result));
        },
        level);
    if (absl::Status queued = model.Submit(task); !queued.ok()) {
      task->Complete(queued);
    }
  }
}

bool InferenceCore::ServerReady() const {
  return state_->NotReadyReason().empty();
}

bool InferenceCore::ModelReady(const std::string& name,
                               const std::string& version) const {
  // Not while draining either: the model would refuse a request.
  auto registry = state_->AdmittingRegistry();
  return registry.ok() && (*registry)->Find(name, version).ok();
}

inference::ServerMetadataResponse InferenceCore::ServerMetadata() const {
  inference::ServerMetadataResponse metadata;
  metadata.set_name("fusionserve");
  metadata.set_version(server_version_);
  for (const char* extension : {"binary_tensor_data", "parameters",
                                "model_configuration", "statistics"}) {
    metadata.add_extensions(extension);
  }
  return metadata;
}

absl::StatusOr<inference::ModelMetadataResponse> InferenceCore::ModelMetadata(
    const std::string& name, const std::string& version) const {
  auto registry = state_->AdmittingRegistry();
  if (!registry.ok()) return registry.status();
  auto servable = (*registry)->Find(name, version);
  if (!servable.ok()) return servable.status();
  auto status = (*registry)->GetModelStatus(name);
  if (!status.ok()) return status.status();
  const fusion::v1::ModelConfig& config = (*servable)->config();
  inference::ModelMetadataResponse metadata;
  metadata.set_name(config.name());
  for (const serving::VersionStatus& v : status->versions) {
    if (v.state == serving::VersionState::kReady) {
      metadata.add_versions(std::to_string(v.version));
    }
  }
  metadata.set_platform(kPlatform);
  for (auto& tensor : InputTensors(config)) *metadata.add_inputs() = tensor;
  for (auto& tensor : OutputTensors(config)) *metadata.add_outputs() = tensor;
  return metadata;
}

absl::StatusOr<inference::ModelConfigResponse> InferenceCore::ModelConfig(
    const std::string& name, const std::string& version) const {
  auto registry = state_->AdmittingRegistry();
  if (!registry.ok()) return registry.status();
  auto servable = (*registry)->Find(name, version);
  if (!servable.ok()) return servable.status();
  const fusion::v1::ModelConfig& config = (*servable)->config();
  inference::ModelConfigResponse response;
  inference::ModelConfig& out = *response.mutable_config();
  out.set_name(config.name());
  out.set_platform(kPlatform);
  out.set_max_batch_size(config.batching().max_batch_size());
  // Dims without the batch dimension, as Triton's configs write them.
  for (const auto& tensor : InputTensors(config)) {
    auto* input = out.add_input();
    input->set_name(tensor.name());
    input->set_data_type(ConfigDatatype(tensor.datatype()));
    input->mutable_dims()->Add(tensor.shape().begin() + 1,
                               tensor.shape().end());
    input->set_optional(tensor.name() != kFeatures);
  }
  for (const auto& tensor : OutputTensors(config)) {
    auto* output = out.add_output();
    output->set_name(tensor.name());
    output->set_data_type(ConfigDatatype(tensor.datatype()));
    output->mutable_dims()->Add(tensor.shape().begin() + 1,
                                tensor.shape().end());
  }
  auto* group = out.add_instance_group();
  group->set_count(config.batching().instance_count());
  group->set_kind(absl::StartsWith((*servable)->device(), "cuda")
                      ? inference::ModelInstanceGroup::KIND_GPU
                      : inference::ModelInstanceGroup::KIND_CPU);
  auto* batching = out.mutable_dynamic_batching();
  batching->mutable_preferred_batch_size()->Add(
      config.batching().preferred_batch_sizes().begin(),
      config.batching().preferred_batch_sizes().end());
  batching->set_max_queue_delay_microseconds(
      static_cast<uint64_t>(config.batching().max_queue_delay_us()));
  batching->set_priority_levels(
      static_cast<uint64_t>(config.batching().priority_levels()));
  return response;
}

absl::StatusOr<inference::ModelStatisticsResponse>
InferenceCore::ModelStatistics(const std::string& name,
                               const std::string& version) const {
  serving::ModelRegistry* registry = state_->registry();
  if (registry == nullptr) {
    return absl::UnavailableError("models are loading");
  }
  inference::ModelStatisticsResponse response;
  std::vector<std::string> names;
  if (name.empty()) {
    for (const serving::ModelStatus& model : registry->ListModels()) {
      names.push_back(model.name);
    }
  } else {
    names.push_back(name);
  }
  for (const std::string& model : names) {
    auto status = registry->GetModelStatus(model);
    if (!status.ok()) return status.status();
    bool found = false;
    for (const serving::VersionStatus& v : status->versions) {
      const std::string number = std::to_string(v.version);
      if (!version.empty() && version != number) continue;
      auto servable = registry->Find(model, number);
      if (!servable.ok()) continue;  // loading, unloading or failed
      *response.add_model_stats() = Statistics(**servable);
      found = true;
    }
    if (!found && !version.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "model '", model, "' has no ready version '", version, "'"));
    }
  }
  return response;
}

}  // namespace fusion::api::v2

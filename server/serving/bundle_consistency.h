// Load-time checks that a bundle's files agree with each other, so that a
// bundle whose vocab.txt, config.pbtxt or model.pt was swapped for another
// model's fails its load instead of serving wrong answers. (The model's
// answers against golden.jsonl are checked by the runtime,
// runtime/torch_model_runtime.h; these checks need the tokenizer.)
// No Torch here.
#ifndef FUSION_SERVER_SERVING_BUNDLE_CONSISTENCY_H_
#define FUSION_SERVER_SERVING_BUNDLE_CONSISTENCY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/runtime/golden_file.h"
#include "server/runtime/model_runtime.h"
#include "server/text/wordpiece_tokenizer.h"

namespace fusion::serving {

// Every golden case with a text must tokenize to its token_ids with this
// tokenizer (the bundle's vocab_path and config.pbtxt's tokenizer
// settings). FAILED_PRECONDITION naming the vocabulary, the case and the
// first id that differs. A text the tokenizer refuses (truncation REJECT)
// is skipped: refusing it is the config's choice, not a disagreement.
absl::Status CheckGoldenTokenization(
    const std::vector<runtime::GoldenCase>& cases,
    const text::WordPieceTokenizer& tokenizer, const std::string& vocab_path);

// The model must take every id the tokenizer can give: scores
// [CLS] <the vocabulary's last id> [SEP] once (zero features).
// FAILED_PRECONDITION with the model's error when it fails, as a model
// whose embedding is smaller than the vocabulary does.
absl::Status CheckVocabularyFitsModel(runtime::ModelRuntime& runtime,
                                      const text::WordPieceTokenizer& tokenizer,
                                      int num_features,
                                      const std::string& vocab_path);

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_BUNDLE_CONSISTENCY_H_

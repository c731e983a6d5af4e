// Reading the tensors of an inference::ModelInferRequest and writing those
// of a response, from and to either typed `contents` or little-endian raw
// bytes (BYTES elements: a 4-byte little-endian length, then the bytes).
// Pure functions and views; no model knowledge.
#ifndef FUSION_SERVER_API_V2_INFER_TENSORS_H_
#define FUSION_SERVER_API_V2_INFER_TENSORS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "inference/grpc_service.pb.h"

namespace fusion::api::v2 {

// One input's elements, row-major. Holds pointers into the request, which
// must outlive it.
class InputTensor {
 public:
  // Checks the datatype is one of BYTES, INT32, INT64, FP32, the shape has
  // no negative dimension, and the data holds exactly the shape's element
  // count. `raw` is the input's raw_input_contents entry, or null for typed
  // contents. INVALID_ARGUMENT naming the tensor otherwise.
  static absl::StatusOr<InputTensor> Make(
      const inference::ModelInferRequest::InferInputTensor& tensor,
      const std::string* raw);

  const std::string& name() const { return tensor_->name(); }
  const std::string& datatype() const { return tensor_->datatype(); }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t size() const { return size_; }

  // Element `i` (< size()) of an INT32 or INT64 tensor.
  int64_t Int(int64_t i) const;
  // Element `i` of an FP32 tensor.
  float Float(int64_t i) const;
  // Element `i` of a BYTES tensor.
  absl::string_view Bytes(int64_t i) const;

 private:
  InputTensor() = default;
  const inference::ModelInferRequest::InferInputTensor* tensor_ = nullptr;
  const std::string* raw_ = nullptr;
  std::vector<int64_t> shape_;
  int64_t size_ = 0;
  std::vector<absl::string_view> bytes_;  // BYTES elements (typed or raw)
};

// Appends an output tensor to `response`: its data in typed contents, or,
// with `raw`, as the next raw_output_contents entry.
void AddFp32Output(const std::string& name, std::vector<int64_t> shape,
                   const std::vector<float>& data, bool raw,
                   inference::ModelInferResponse& response);
void AddInt32Output(const std::string& name, std::vector<int64_t> shape,
                    const std::vector<int32_t>& data, bool raw,
                    inference::ModelInferResponse& response);

}  // namespace fusion::api::v2

#endif  // FUSION_SERVER_API_V2_INFER_TENSORS_H_

#include "server/api/v2/infer_tensors.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/api/request_validation.h"

namespace fusion::api::v2 {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "raw tensors are little-endian; this code copies them as-is");

absl::Status Invalid(const std::string& tensor, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(tensor, ": ", what));
}

// Bytes per element of a fixed-size datatype; 0 for BYTES.
int ElementBytes(const std::string& datatype) {
  if (datatype == "INT32" || datatype == "FP32") return 4;
  if (datatype == "INT64") return 8;
  return 0;
}

int64_t TypedCount(const std::string& datatype,
                   const inference::InferTensorContents& c) {
  if (datatype == "INT32") return c.int_contents_size();
  if (datatype == "INT64") return c.int64_contents_size();
  if (datatype == "FP32") return c.fp32_contents_size();
  return c.bytes_contents_size();
}

template <typename T>
T ReadRaw(const std::string& raw, int64_t i) {
  T value;
  std::memcpy(&value, raw.data() + i * static_cast<int64_t>(sizeof(T)),
              sizeof(T));
  return value;
}

template <typename T>
std::string ToRaw(const std::vector<T>& data) {
  return std::string(reinterpret_cast<const char*>(data.data()),
                     data.size() * sizeof(T));
}

}  // namespace

absl::StatusOr<InputTensor> InputTensor::Make(
    const inference::ModelInferRequest::InferInputTensor& tensor,
    const std::string* raw) {
  const std::string& name = tensor.name();
  const std::string& datatype = tensor.datatype();
  if (datatype != "BYTES" && ElementBytes(datatype) == 0) {
    return Invalid(
        name, absl::StrCat("unsupported datatype '", QuoteClientText(datatype),
                           "' (BYTES, INT32, INT64, FP32)"));
  }
  InputTensor view;
  view.tensor_ = &tensor;
  view.raw_ = raw;
  view.size_ = 1;
  for (int64_t dim : tensor.shape()) {
    if (dim < 0) return Invalid(name, "shape has a negative dimension");
    if (dim > 0 && view.size_ > std::numeric_limits<int32_t>::max() / dim) {
      return Invalid(name, "shape holds too many elements");
    }
    view.shape_.push_back(dim);
    view.size_ *= dim;
  }
  if (raw == nullptr) {
    const int64_t count = TypedCount(datatype, tensor.contents());
    if (count != view.size_) {
      return Invalid(name, absl::StrCat("shape holds ", view.size_,
                                        " elements, contents hold ", count));
    }
    if (datatype == "BYTES") {
      for (const std::string& element : tensor.contents().bytes_contents()) {
        view.bytes_.push_back(element);
      }
    }
    return view;
  }
  if (const int bytes = ElementBytes(datatype); bytes > 0) {
    const int64_t expected = view.size_ * bytes;
    if (static_cast<int64_t>(raw->size()) != expected) {
      return Invalid(name, absl::StrCat("raw contents hold ", raw->size(),
                                        " bytes, shape and ", datatype,
                                        " need ", expected));
    }
    return view;
  }
  // BYTES: length-prefixed elements that must fill the entry exactly.
  absl::string_view rest(*raw);
  for (int64_t i = 0; i < view.size_; ++i) {
    uint32_t length = 0;
    if (rest.size() < sizeof(length)) {
      return Invalid(name, absl::StrCat("raw contents end inside element ", i));
    }
    std::memcpy(&length, rest.data(), sizeof(length));
    rest.remove_prefix(sizeof(length));
    if (rest.size() < length) {
      return Invalid(name, absl::StrCat("raw contents end inside element ", i));
    }
    view.bytes_.push_back(rest.substr(0, length));
    rest.remove_prefix(length);
  }
  if (!rest.empty()) {
    return Invalid(name, absl::StrCat("raw contents hold ", rest.size(),
                                      " bytes past the shape's ", view.size_,
                                      " elements"));
  }
  return view;
}

int64_t InputTensor::Int(int64_t i) const {
  const bool int32 = datatype() == "INT32";
  if (raw_ != nullptr) {
    return int32 ? ReadRaw<int32_t>(*raw_, i) : ReadRaw<int64_t>(*raw_, i);
  }
  return int32 ? tensor_->contents().int_contents(i)
               : tensor_->contents().int64_contents(i);
}

float InputTensor::Float(int64_t i) const {
  if (raw_ != nullptr) return ReadRaw<float>(*raw_, i);
  return tensor_->contents().fp32_contents(i);
}

absl::string_view InputTensor::Bytes(int64_t i) const { return bytes_[i]; }

void AddFp32Output(const std::string& name, std::vector<int64_t> shape,
                   const std::vector<float>& data, bool raw,
                   inference::ModelInferResponse& response) {
  auto* output = response.add_outputs();
  output->set_name(name);
  output->set_datatype("FP32");
  output->mutable_shape()->Add(shape.begin(), shape.end());
  if (raw) {
    response.add_raw_output_contents(ToRaw(data));
  } else {
    output->mutable_contents()->mutable_fp32_contents()->Add(data.begin(),
                                                             data.end());
  }
}

void AddInt32Output(const std::string& name, std::vector<int64_t> shape,
                    const std::vector<int32_t>& data, bool raw,
                    inference::ModelInferResponse& response) {
  auto* output = response.add_outputs();
  output->set_name(name);
  output->set_datatype("INT32");
  output->mutable_shape()->Add(shape.begin(), shape.end());
  if (raw) {
    response.add_raw_output_contents(ToRaw(data));
  } else {
    output->mutable_contents()->mutable_int_contents()->Add(data.begin(),
                                                            data.end());
  }
}

}  // namespace fusion::api::v2

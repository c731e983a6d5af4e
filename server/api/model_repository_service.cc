#include "server/api/model_repository_service.h"

#include "absl/strings/str_cat.h"
#include "server/api/response_builder.h"
#include "server/api/status_mapping.h"
#include "server/common/log.h"

namespace fusion::api {
namespace {

// The model's status after a change, whatever the change's outcome: the
// caller sees which versions serve now (an unloaded model: none).
void FillModel(const serving::ModelRegistry& registry, const std::string& name,
               fusion::v1::ModelStatus& out) {
  auto status = registry.GetModelStatus(name);
  if (status.ok()) {
    out = ToModelStatusProto(*status);
  } else {
    out.set_name(name);
  }
}

}  // namespace

fusion::v1::ModelStatus ToModelStatusProto(const serving::ModelStatus& status) {
  fusion::v1::ModelStatus proto;
  proto.set_name(status.name);
  proto.set_is_default(status.is_default);
  for (const serving::VersionStatus& version : status.versions) {
    *proto.add_versions() = ToVersionStatusProto(version);
  }
  return proto;
}

grpc::Status ModelRepositoryServiceImpl::ListModels(
    grpc::ServerContext*, const fusion::v1::ListModelsRequest*,
    fusion::v1::ListModelsResponse* response) {
  for (const serving::ModelStatus& model : registry_->ListModels()) {
    *response->add_models() = ToModelStatusProto(model);
  }
  return grpc::Status::OK;
}

grpc::Status ModelRepositoryServiceImpl::LoadModel(
    grpc::ServerContext*, const fusion::v1::LoadModelRequest* request,
    fusion::v1::LoadModelResponse* response) {
  if (request->name().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("name: empty"));
  }
  Log(LogLevel::kInfo, "admin: LoadModel ", request->name());
  absl::Status status = registry_->LoadModel(request->name());
  FillModel(*registry_, request->name(), *response->mutable_model());
  return ToGrpcStatus(status);
}

grpc::Status ModelRepositoryServiceImpl::UnloadModel(
    grpc::ServerContext*, const fusion::v1::UnloadModelRequest* request,
    fusion::v1::UnloadModelResponse* response) {
  if (request->name().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("name: empty"));
  }
  Log(LogLevel::kInfo, "admin: UnloadModel ", request->name(),
      request->version().empty() ? "" : absl::StrCat(" v", request->version()));
  absl::Status status =
      registry_->UnloadModel(request->name(), request->version());
  FillModel(*registry_, request->name(), *response->mutable_model());
  return ToGrpcStatus(status);
}

}  // namespace fusion::api

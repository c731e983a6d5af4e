// fusion.v1.ModelRepositoryService: what is loaded, and loading or
// unloading on demand (model_repository.proto).
//
// On gRPC's synchronous API: a load takes seconds, and a synchronous
// handler blocks a thread of its own server's pool rather than one of the
// scoring service's callback threads. Served on its own address only.
#ifndef FUSION_SERVER_API_MODEL_REPOSITORY_SERVICE_H_
#define FUSION_SERVER_API_MODEL_REPOSITORY_SERVICE_H_

#include "fusion/v1/model_repository.grpc.pb.h"
#include "server/serving/model_registry.h"

namespace fusion::api {

class ModelRepositoryServiceImpl final
    : public fusion::v1::ModelRepositoryService::Service {
 public:
  // `registry` must outlive the service.
  explicit ModelRepositoryServiceImpl(serving::ModelRegistry* registry)
      : registry_(registry) {}

  grpc::Status ListModels(grpc::ServerContext* context,
                          const fusion::v1::ListModelsRequest* request,
                          fusion::v1::ListModelsResponse* response) override;
  grpc::Status LoadModel(grpc::ServerContext* context,
                         const fusion::v1::LoadModelRequest* request,
                         fusion::v1::LoadModelResponse* response) override;
  grpc::Status UnloadModel(grpc::ServerContext* context,
                           const fusion::v1::UnloadModelRequest* request,
                           fusion::v1::UnloadModelResponse* response) override;

 private:
  serving::ModelRegistry* const registry_;
};

// The API's form of a model's status.
fusion::v1::ModelStatus ToModelStatusProto(const serving::ModelStatus& status);

}  // namespace fusion::api

#endif  // FUSION_SERVER_API_MODEL_REPOSITORY_SERVICE_H_

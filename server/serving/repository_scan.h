// What a model repository holds on disk: `<repository>/<model>/<version>/`
// directories with a config.pbtxt, and a signature of each version's files
// so that a copy still in progress can be told from a finished one.
#ifndef FUSION_SERVER_SERVING_REPOSITORY_SCAN_H_
#define FUSION_SERVER_SERVING_REPOSITORY_SCAN_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fusion::serving {

// The names, sizes and modification times of a version directory's files,
// in one string: equal signatures mean unchanged files.
using BundleSignature = std::string;

// version -> signature, for one model's directory.
using VersionDirs = std::map<int64_t, BundleSignature>;

// Every model directory and its numeric version directories holding a
// config.pbtxt. NOT_FOUND when `repository` is not a directory.
absl::StatusOr<std::map<std::string, VersionDirs>> ScanRepository(
    const std::string& repository);

// One model's version directories (empty when it has none or is absent).
VersionDirs ScanModel(const std::string& repository, const std::string& model);

std::string BundleDir(const std::string& repository, const std::string& model,
                      int64_t version);

// NOT_FOUND for a `model` with no version that ScanModel sees, saying why
// in terms of the files to fix: no repository, no model directory, no
// numeric version directory in it, or version directories that lack their
// config.pbtxt (named; ScanModel skips those as copies still in progress).
absl::Status NoVersionError(const std::string& repository,
                            const std::string& model);

}  // namespace fusion::serving

#endif  // FUSION_SERVER_SERVING_REPOSITORY_SCAN_H_

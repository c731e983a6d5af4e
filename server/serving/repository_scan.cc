#include "server/serving/repository_scan.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fusion::serving {
namespace {

namespace fs = std::filesystem;

// Files may vanish or change while they are listed; an error just makes the
// signature differ, which reads as "not settled yet".
BundleSignature SignatureOf(const fs::path& dir) {
  std::map<std::string, std::string> files;  // sorted by name
  std::error_code error;
  for (const auto& entry : fs::recursive_directory_iterator(dir, error)) {
    if (!entry.is_regular_file(error)) continue;
    const auto size = entry.file_size(error);
    const auto mtime = entry.last_write_time(error).time_since_epoch().count();
    files[fs::relative(entry.path(), dir, error).string()] =
        absl::StrCat(size, "@", mtime);
  }
  if (error) return absl::StrCat("error:", error.message());
  std::string signature;
  for (const auto& [name, stat] : files) {
    absl::StrAppend(&signature, name, "=", stat, ";");
  }
  return signature;
}

}  // namespace

std::string BundleDir(const std::string& repository, const std::string& model,
                      int64_t version) {
  return (fs::path(repository) / model / std::to_string(version)).string();
}

VersionDirs ScanModel(const std::string& repository, const std::string& model) {
  VersionDirs versions;
  std::error_code error;
  for (const auto& entry :
       fs::directory_iterator(fs::path(repository) / model, error)) {
    int64_t version = 0;
    if (!entry.is_directory(error) ||
        !absl::SimpleAtoi(entry.path().filename().string(), &version) ||
        version <= 0 || !fs::exists(entry.path() / "config.pbtxt", error)) {
      continue;
    }
    versions[version] = SignatureOf(entry.path());
  }
  return versions;
}

absl::Status NoVersionError(const std::string& repository,
                            const std::string& model) {
  const fs::path model_dir = fs::path(repository) / model;
  std::error_code error;
  if (!fs::is_directory(repository, error)) {
    return absl::NotFoundError(
        absl::StrCat("model repository not found: ", repository));
  }
  if (!fs::is_directory(model_dir, error)) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' not in ",
                                            repository, " (no directory ",
                                            model_dir.string(), ")"));
  }
  std::vector<std::string> without_config;
  for (const auto& entry : fs::directory_iterator(model_dir, error)) {
    int64_t version = 0;
    if (entry.is_directory(error) &&
        absl::SimpleAtoi(entry.path().filename().string(), &version) &&
        version > 0) {
      without_config.push_back((entry.path() / "config.pbtxt").string());
    }
  }
  if (without_config.empty()) {
    return absl::NotFoundError(
        absl::StrCat("model '", model, "' has no version directory in ",
                     model_dir.string(), " (expected ", model_dir.string(),
                     "/<version>/config.pbtxt, version a positive integer)"));
  }
  std::sort(without_config.begin(), without_config.end());
  return absl::NotFoundError(absl::StrCat(
      "model '", model, "' has no loadable version: missing ",
      absl::StrJoin(without_config, ", "),
      " (a version directory is served once its config.pbtxt exists)"));
}

absl::StatusOr<std::map<std::string, VersionDirs>> ScanRepository(
    const std::string& repository) {
  std::error_code error;
  if (!fs::is_directory(repository, error)) {
    return absl::NotFoundError(
        absl::StrCat("model repository not found: ", repository));
  }
  std::map<std::string, VersionDirs> models;
  for (const auto& entry : fs::directory_iterator(repository, error)) {
    if (!entry.is_directory(error)) continue;
    const std::string name = entry.path().filename().string();
    VersionDirs versions = ScanModel(repository, name);
    if (!versions.empty()) models[name] = std::move(versions);
  }
  return models;
}

}  // namespace fusion::serving

#include "server/serving/repository_scan.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

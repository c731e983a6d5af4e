#include "server/security/certificate_reloader.h"

#include <utility>

#include "server/common/log.h"

namespace fusion::security {
namespace {

void LogLoaded(const TlsFiles& files, const TlsMaterial& material,
               uint64_t generation) {
  Log(LogLevel::kInfo, "TLS (", files.flag_prefix, "_cert ", files.cert,
      "): ", generation == 1 ? "loaded " : "reloaded ", material.summary,
      material.client_ca_pem.empty()
          ? ""
          : absl::StrCat("; client certificates must chain to ",
                         files.client_ca));
  if (material.outside_validity) {
    Log(LogLevel::kWarning, "TLS (", files.flag_prefix, "_cert ", files.cert,
        "): the certificate is expired or not valid yet; clients will "
        "refuse it");
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateReloader>>
CertificateReloader::Create(TlsFiles files) {
  std::unique_ptr<CertificateReloader> reloader(
      new CertificateReloader(std::move(files)));
  absl::MutexLock lock(&reloader->reload_mu_);
  if (absl::Status s = reloader->LoadLocked(reloader->StampFiles()); !s.ok()) {
    return s;
  }
  return reloader;
}

CertificateReloader::Current CertificateReloader::current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void CertificateReloader::ReloadIfChanged() {
  const Stamps stamps = StampFiles();
  absl::MutexLock lock(&reload_mu_);
  if (stamps == last_attempt_) return;
  if (absl::Status s = LoadLocked(stamps); !s.ok()) {
    Log(LogLevel::kWarning,
        "TLS: files changed but cannot be used; the "
        "certificate in force stays: ",
        s.message());
  }
}

absl::Status CertificateReloader::Reload() {
  absl::MutexLock lock(&reload_mu_);
  return LoadLocked(StampFiles());
}

CertificateReloader::Stamps CertificateReloader::StampFiles() const {
  Stamps stamps;
  const std::string* paths[] = {&files_.cert, &files_.key, &files_.client_ca};
  for (size_t i = 0; i < stamps.size(); ++i) {
    struct stat st;
    if (paths[i]->empty() || stat(paths[i]->c_str(), &st) != 0) continue;
    stamps[i].device = st.st_dev;
    stamps[i].inode = st.st_ino;
    stamps[i].size = st.st_size;
    stamps[i].mtime_ns =
        int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  }
  return stamps;
}

absl::Status CertificateReloader::LoadLocked(const Stamps& stamps) {
  last_attempt_ = stamps;
  auto material = LoadTlsMaterial(files_);
  if (!material.ok()) return material.status();
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    current_.material = *material;
    generation = ++current_.generation;
  }
  LogLoaded(files_, **material, generation);
  return absl::OkStatus();
}

}  // namespace fusion::security

// Keeps the TLS material in force for one set of files (TlsFiles) and
// replaces it when the files change, so certificates rotate without a
// restart.
//
// - ReloadIfChanged() is what the TLS servers call at the start of every
//   handshake: a stat() per file; the files are re-read only when one's
//   (device, inode, size, modification time) differs from the last attempt.
//   So a rotation is picked up by the first connection after it, whether the
//   files were rewritten, renamed over, or swapped by a symlink (Kubernetes
//   secret volumes).
// - Reload() re-reads now, changed or not (SIGHUP).
// Either way a replacement that does not load (a missing file, a key that
// does not match, a half-copied pair) leaves the material in force as it
// was, and is logged as a warning; ReloadIfChanged does not retry the same
// files until they change again. Successful reloads are logged with the new
// certificate's subject, serial and expiry.
//
// Thread-safe: any thread may call any method.
#ifndef FUSION_SERVER_SECURITY_CERTIFICATE_RELOADER_H_
#define FUSION_SERVER_SECURITY_CERTIFICATE_RELOADER_H_

#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/security/tls_material.h"

namespace fusion::security {

class CertificateReloader {
 public:
  // Loads the files once: their error, naming the file, when they are not
  // usable (see tls_material.h).
  static absl::StatusOr<std::unique_ptr<CertificateReloader>> Create(
      TlsFiles files);

  struct Current {
    std::shared_ptr<const TlsMaterial> material;
    uint64_t generation = 0;  // 1 for the first load, +1 per replacement
  };
  Current current() const;

  // Re-reads the files if they changed since the last attempt.
  void ReloadIfChanged();

  // Re-reads the files now. OK when the new material is in force; else the
  // error, and the material in force stays.
  absl::Status Reload();

  const TlsFiles& files() const { return files_; }

 private:
  // What identifies one file's contents without reading it; all zero for a
  // file that cannot be stat'ed.
  struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileStamp& o) const {
      return device == o.device && inode == o.inode && size == o.size &&
             mtime_ns == o.mtime_ns;
    }
  };
  using Stamps = std::array<FileStamp, 3>;  // cert, key, client CA

  explicit CertificateReloader(TlsFiles files) : files_(std::move(files)) {}
  Stamps StampFiles() const;
  // Loads with `stamps` taken just before; reload_mu_ held.
  absl::Status LoadLocked(const Stamps& stamps)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  const TlsFiles files_;
  // One reload at a time; readers of current() never wait for one.
  absl::Mutex reload_mu_;
  Stamps last_attempt_ ABSL_GUARDED_BY(reload_mu_);
  mutable absl::Mutex mu_;
  Current current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fusion::security

#endif  // FUSION_SERVER_SECURITY_CERTIFICATE_RELOADER_H_

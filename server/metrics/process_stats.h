// This process's resource use, read from /proc (Linux only).
#ifndef FUSION_SERVER_METRICS_PROCESS_STATS_H_
#define FUSION_SERVER_METRICS_PROCESS_STATS_H_

#include <optional>

namespace fusion::metrics {

struct ProcessStats {
  double resident_memory_bytes = 0;
  double cpu_seconds = 0;  // user + system
  double open_fds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};

// nullopt when /proc cannot be read.
std::optional<ProcessStats> ReadProcessStats();

}  // namespace fusion::metrics

#endif  // FUSION_SERVER_METRICS_PROCESS_STATS_H_

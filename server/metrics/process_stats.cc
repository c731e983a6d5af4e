#include "server/metrics/process_stats.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fusion::metrics {
namespace {

// Fields of /proc/self/stat after the parenthesised command name, which may
// itself contain spaces; fields()[0] is field 3 (state).
std::vector<std::string> StatFieldsAfterComm() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double value = 0;
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

std::optional<ProcessStats> ReadProcessStats() {
  const std::vector<std::string> fields = StatFieldsAfterComm();
  // utime, stime are fields 14, 15; starttime 22; rss 24 (1-based).
  if (fields.size() < 22) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats stats;
  stats.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  stats.start_time_seconds = BootTimeSeconds() + std::stod(fields[19]) / ticks;
  stats.resident_memory_bytes = std::stod(fields[21]) * page;
  std::error_code error;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator();
       it.increment(error)) {
    stats.open_fds += 1;
  }
  return stats;
}

}  // namespace fusion::metrics

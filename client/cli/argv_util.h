// Command-line helpers that absl flags lacks. Pure; thread-safe.
#ifndef FUSION_CLIENT_CLI_ARGV_UTIL_H_
#define FUSION_CLIENT_CLI_ARGV_UTIL_H_

#include <string>
#include <vector>

namespace fusion::client {

// absl flags keep only the last occurrence of a flag; `--feature a=1
// --feature b=2` must keep both. Removes every occurrence of --NAME=V,
// --NAME V, -NAME=V and -NAME V from `args` (up to a "--" terminator) and
// returns the values in order. A trailing --NAME without a value yields "".
std::vector<std::string> ExtractRepeatedFlag(std::vector<std::string>& args,
                                             const std::string& name);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_CLI_ARGV_UTIL_H_

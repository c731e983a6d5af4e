#include "client/cli/argv_util.h"

namespace fusion::client {

std::vector<std::string> ExtractRepeatedFlag(std::vector<std::string>& args,
                                             const std::string& name) {
  std::vector<std::string> values;
  std::vector<std::string> kept;
  const std::string long_form = "--" + name, short_form = "-" + name;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg == long_form || arg == short_form) {
      values.push_back(i + 1 < args.size() ? args[++i] : "");
    } else if (arg.rfind(long_form + "=", 0) == 0) {
      values.push_back(arg.substr(long_form.size() + 1));
    } else if (arg.rfind(short_form + "=", 0) == 0) {
      values.push_back(arg.substr(short_form.size() + 1));
    } else {
      kept.push_back(arg);
    }
  }
  for (; i < args.size(); ++i) kept.push_back(args[i]);
  args = std::move(kept);
  return values;
}

}  // namespace fusion::client

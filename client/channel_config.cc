#include "client/channel_config.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace fusion::client {
namespace {

enum class Family { kIpv4, kIpv6, kName };

// True when `target` starts with "<scheme>:" for a scheme gRPC resolves.
bool HasScheme(absl::string_view target) {
  static constexpr absl::string_view kSchemes[] = {
      "dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:", "xds:"};
  for (absl::string_view scheme : kSchemes) {
    if (absl::StartsWith(target, scheme)) return true;
  }
  return absl::StrContains(target, "://");
}

bool IsIpv4(absl::string_view host) {
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4) return false;
  for (absl::string_view part : parts) {
    int value;
    if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &value) ||
        value < 0 || value > 255) {
      return false;
    }
  }
  return true;
}

// Splits "host:port" / "[v6]:port" and classifies the host.
absl::StatusOr<Family> ClassifyAddress(absl::string_view address) {
  size_t colon = address.rfind(':');
  int port;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target list element '", address, "': expected HOST:PORT"));
  }
  absl::string_view host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return Family::kIpv6;
  }
  return IsIpv4(host) ? Family::kIpv4 : Family::kName;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const ConnectionOptions& options) {
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadFile(options.ca_file);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its key, and a key its certificate "
        "(--tls_cert with --tls_key)");
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> chain = ReadFile(options.tls_cert_file);
    if (!chain.ok()) return chain.status();
    absl::StatusOr<std::string> key = ReadFile(options.tls_key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(chain);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::string> NormalizeTarget(absl::string_view target) {
  target = absl::StripAsciiWhitespace(target);
  if (target.empty()) return absl::InvalidArgumentError("target is empty");
  if (HasScheme(target) || !absl::StrContains(target, ',')) {
    return std::string(target);
  }
  std::vector<std::string> addresses;
  Family family = Family::kIpv4;
  for (absl::string_view element : absl::StrSplit(target, ',')) {
    element = absl::StripAsciiWhitespace(element);
    if (element.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("target '", target, "': empty element in the list"));
    }
    absl::StatusOr<Family> element_family = ClassifyAddress(element);
    if (!element_family.ok()) return element_family.status();
    if (*element_family == Family::kName) {
      return absl::InvalidArgumentError(absl::StrCat(
          "target list element '", element,
          "' is not an IP literal; a list takes IP addresses only (use "
          "dns:///NAME:PORT to balance over the addresses of a name)"));
    }
    if (!addresses.empty() && *element_family != family) {
      return absl::InvalidArgumentError(
          absl::StrCat("target '", target, "' mixes IPv4 and IPv6 addresses"));
    }
    family = *element_family;
    addresses.emplace_back(element);
  }
  return absl::StrCat(family == Family::kIpv6 ? "ipv6:" : "ipv4:",
                      absl::StrJoin(addresses, ","));
}

absl::StatusOr<std::string> ServiceConfigJson(absl::string_view lb_policy) {
  if (lb_policy.empty()) return std::string();
  if (lb_policy != "round_robin" && lb_policy != "pick_first") {
    return absl::InvalidArgumentError(
        absl::StrCat("load-balancing policy '", lb_policy,
                     "': expected round_robin or pick_first"));
  }
  return absl::StrCat(R"({"loadBalancingConfig":[{")", lb_policy, R"(":{}}]})");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const ConnectionOptions& options) {
  absl::StatusOr<std::string> target = NormalizeTarget(options.target);
  if (!target.ok()) return target.status();
  absl::StatusOr<std::string> service_config =
      ServiceConfigJson(options.lb_policy);
  if (!service_config.ok()) return service_config.status();

  grpc::ChannelArguments args;
  if (!service_config->empty()) args.SetServiceConfigJSON(*service_config);
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (options.private_channel_id >= 0) {
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("fusion.private_channel_id", options.private_channel_id);
  }

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> tls =
        TlsCredentials(options);
    if (!tls.ok()) return tls.status();
    credentials = *std::move(tls);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  } else {
    if (!options.ca_file.empty()) {
      return absl::InvalidArgumentError("a CA file needs TLS (--tls)");
    }
    if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "a client certificate needs TLS (--tls)");
    }
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(*target, credentials, args);
}

}  // namespace fusion::client

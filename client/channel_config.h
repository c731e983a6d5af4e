// How fusion clients reach a server: target forms, load balancing, TLS.
//
// Pure helpers (NormalizeTarget, ServiceConfigJson) plus CreateChannel, which
// turns ConnectionOptions into a grpc::Channel. Thread-safe: no shared state.
#ifndef FUSION_CLIENT_CHANNEL_CONFIG_H_
#define FUSION_CLIENT_CHANNEL_CONFIG_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace fusion::client {

struct ConnectionOptions {
  // "host:port", "dns:///host:port", "ipv4:a:p,b:p", or a comma-separated
  // list of IP literals "a:p,b:p" (turned into an ipv4:/ipv6: URI).
  std::string target = "localhost:50051";
  // "" (gRPC's default, pick_first), "pick_first" or "round_robin".
  std::string lb_policy;
  bool tls = false;
  std::string ca_file;          // PEM roots for TLS; empty: system roots
  std::string tls_server_name;  // overrides the name the certificate must carry
  // A client certificate (PEM chain and its unencrypted key), for servers
  // that require one (mutual TLS); both or neither, and only with tls.
  std::string tls_cert_file;
  std::string tls_key_file;
  int max_message_bytes = 64 << 20;
  // >= 0: the channel gets its own connections (a local subchannel pool)
  // instead of sharing them with every other channel to the same target in
  // this process; load generators open several such channels.
  int private_channel_id = -1;
};

// Returns the gRPC target URI for `target`:
//  - a URI with a scheme (dns:, ipv4:, ipv6:, unix:, ...) unchanged;
//  - "a:p,b:p" of IPv4 literals -> "ipv4:a:p,b:p";
//    "[v6]:p,[v6]:p" -> "ipv6:[v6]:p,[v6]:p";
//  - "host:port" unchanged (gRPC resolves it with DNS).
// INVALID_ARGUMENT for an empty target, an empty list element, a list that
// names hosts (use dns:/// for names) or mixes IPv4 and IPv6, or a list
// element without a port.
absl::StatusOr<std::string> NormalizeTarget(absl::string_view target);

// The service config selecting `lb_policy`: "" for "" (no service config),
// {"loadBalancingConfig":[{"<policy>":{}}]} for pick_first / round_robin;
// INVALID_ARGUMENT for anything else.
absl::StatusOr<std::string> ServiceConfigJson(absl::string_view lb_policy);

// A channel for `options`. INVALID_ARGUMENT for a bad target or policy, TLS
// files without tls, or a client certificate without its key (or the
// reverse); NOT_FOUND when a TLS file cannot be read. Connects lazily.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateChannel(
    const ConnectionOptions& options);

}  // namespace fusion::client

#endif  // FUSION_CLIENT_CHANNEL_CONFIG_H_

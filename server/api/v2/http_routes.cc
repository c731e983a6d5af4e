#include "server/api/v2/http_routes.h"

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/api/v2/http_json.h"

namespace fusion::api::v2 {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kOctetStream[] = "application/octet-stream";
// /v2/models/{name}[/versions/{version}]: matches[1] and matches[2].
constexpr char kModelPath[] = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";

std::string ModelRoute(absl::string_view suffix) {
  return absl::StrCat(kModelPath, suffix);
}

void ReplyError(httplib::Response& res, int status, absl::string_view message) {
  res.status = status;
  res.set_content(ErrorToJson(message), kJson);
}

void ReplyStatus(httplib::Response& res, const absl::Status& status) {
  ReplyError(res, HttpStatusFromCode(status.code()), status.message());
}

template <typename T>
void ReplyJson(httplib::Response& res, const absl::StatusOr<T>& result,
               std::string (*to_json)(const T&)) {
  if (!result.ok()) return ReplyStatus(res, result.status());
  res.status = 200;
  res.set_content(to_json(*result), kJson);
}

// Drops what a handler set before it threw (set_header adds, not replaces).
void ResetForError(httplib::Response& res) {
  res.headers.erase("Content-Type");
  res.headers.erase(kInferHeaderContentLength);
  res.body.clear();
}

// Runs `handler`; an exception becomes 500 {"error"} instead of reaching
// httplib (which would answer 500 with an empty body).
template <typename Handler>
void Guarded(httplib::Response& res, Handler&& handler) {
  try {
    handler();
    return;
  } catch (const std::exception& e) {
    ResetForError(res);
    ReplyError(res, 500, absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    ResetForError(res);
    ReplyError(res, 500, "internal error");
  }
}

std::string Match(const httplib::Request& req, size_t i) {
  return i < req.matches.size() ? req.matches[i].str() : std::string();
}

std::string DescribeModel(const std::string& name, const std::string& version) {
  return version.empty()
             ? absl::StrCat("model '", name, "'")
             : absl::StrCat("model '", name, "' version '", version, "'");
}

// Reads the body into `body`, keeping at most `max_bytes`. Returns the HTTP
// status to answer with when it cannot (413 too large, 400 unreadable).
std::optional<int> ReadBody(const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& reader,
                            size_t max_bytes, std::string* body) {
  if (req.is_multipart_form_data()) {
    // Drain it (the connection stays usable), then refuse it.
    reader([](const httplib::MultipartFormData&) { return true; },
           [](const char*, size_t) { return true; });
    return 400;
  }
  bool too_large = false;
  // A body over the limit is read on and dropped (as httplib skips a too
  // large Content-Length itself), so that the connection stays in step and
  // the 413 reaches the client; only a chunked or compressed body gets here.
  const bool read = reader([&](const char* data, size_t n) {
    if (!too_large && body->size() + n > max_bytes) {
      too_large = true;
      std::string().swap(*body);
    }
    if (!too_large) body->append(data, n);
    return true;
  });
  if (too_large || res.status == 413) return 413;
  if (!read) return 400;
  return std::nullopt;
}

// The infer route: body -> ModelInferRequest -> core -> JSON (+ binary).
void HandleInfer(const InferenceCore& core, size_t max_body_bytes,
                 const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader) {
  std::string body;
  if (const std::optional<int> failed =
          ReadBody(req, res, reader, max_body_bytes, &body)) {
    if (*failed == 413) {
      return ReplyError(res, 413,
                        absl::StrCat("the request body is larger than ",
                                     max_body_bytes, " bytes"));
    }
    if (req.is_multipart_form_data()) {
      return ReplyError(res, 400, "multipart/form-data is not supported");
    }
    return ReplyError(res, 400, "cannot read the request body");
  }
  std::optional<absl::string_view> header;
  std::string header_value;
  if (req.has_header(kInferHeaderContentLength)) {
    header_value = req.get_header_value(kInferHeaderContentLength);
    header = header_value;
  }
  absl::StatusOr<ParsedInferRequest> parsed =
      ParseInferRequest(body, header, Match(req, 1), Match(req, 2));
  std::string().swap(body);  // parsed holds its own copy
  if (!parsed.ok()) return ReplyStatus(res, parsed.status());

  // cpp-httplib handlers are synchronous: wait for `done`, which may run on
  // this thread before Infer returns, or later on an executor thread.
  struct Outcome {
    absl::Notification done;
    absl::StatusOr<inference::ModelInferResponse> response;
  };
  auto outcome = std::make_shared<Outcome>();
  // httplib 0.11 does not tell a handler that its client went away, and
  // HTTP has no deadline of its own: the request's "timeout" parameter is
  // the only bound (the core applies it).
  core.Infer(
      parsed->request, absl::InfiniteFuture(), [] { return false; },
      [outcome](absl::StatusOr<inference::ModelInferResponse> response) {
        outcome->response = std::move(response);
        outcome->done.Notify();
      });
  outcome->done.WaitForNotification();
  if (!outcome->response.ok()) {
    return ReplyStatus(res, outcome->response.status());
  }
  absl::StatusOr<EncodedInferResponse> encoded =
      EncodeInferResponse(*outcome->response, parsed->encoding);
  if (!encoded.ok()) return ReplyStatus(res, encoded.status());
  res.status = 200;
  if (encoded->has_binary) {
    res.set_header(kInferHeaderContentLength,
                   std::to_string(encoded->json_size));
    res.set_content(encoded->body, kOctetStream);
  } else {
    res.set_content(encoded->body, kJson);
  }
}

// A JSON body for the errors httplib answers itself under /v2 (no route:
// 404; a body over the limit on a route without a body: 413; ...).
httplib::Server::HandlerResponse V2ErrorBody(const httplib::Request& req,
                                             httplib::Response& res) {
  if (!res.body.empty() || !absl::StartsWith(req.path, "/v2")) {
    return httplib::Server::HandlerResponse::Unhandled;
  }
  std::string message;
  switch (res.status) {
    case 404:
      message = absl::StrCat("no route for ", req.method, " ", req.path);
      break;
    case 413:
      message = "the request body is too large";
      break;
    default:
      message = absl::StrCat("HTTP status ", res.status);
      break;
  }
  res.set_content(ErrorToJson(message), kJson);
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

void AddV2Routes(httplib::Server& server, const InferenceCore& core,
                 const HttpRoutesOptions& options) {
  const size_t max_body_bytes =
      options.max_body_bytes > 0 ? static_cast<size_t>(options.max_body_bytes)
                                 : std::numeric_limits<size_t>::max();
  // httplib answers 413 itself when Content-Length exceeds this (the body
  // is skipped, the handler never sees it); HandleInfer also holds chunked
  // and compressed bodies to it.
  server.set_payload_max_length(max_body_bytes);
  if (options.worker_threads > 0) {
    const size_t threads = static_cast<size_t>(options.worker_threads);
    server.new_task_queue = [threads] {
      return new httplib::ThreadPool(threads);
    };
  }
  server.set_error_handler(httplib::Server::HandlerWithResponse(&V2ErrorBody));

  using httplib::Request;
  using httplib::Response;

  server.Get(R"(/v2/?)", [&core](const Request&, Response& res) {
    Guarded(res, [&] {
      res.set_content(ServerMetadataToJson(core.ServerMetadata()), kJson);
    });
  });
  server.Get("/v2/health/live", [&core](const Request&, Response& res) {
    Guarded(res, [&] {
      if (core.ServerLive()) {
        res.status = 200;
      } else {
        ReplyError(res, 503, "the server is not live");
      }
    });
  });
  server.Get("/v2/health/ready", [&core](const Request&, Response& res) {
    Guarded(res, [&] {
      if (core.ServerReady()) {
        res.status = 200;
      } else {
        ReplyError(res, 503, "the server is not ready");
      }
    });
  });
  // Before the model routes: "stats" is not a model name here (as Triton).
  server.Get("/v2/models/stats", [&core](const Request&, Response& res) {
    Guarded(res, [&] {
      ReplyJson(res, core.ModelStatistics("", ""), &ModelStatisticsToJson);
    });
  });
  server.Get(ModelRoute("/ready"), [&core](const Request& req, Response& res) {
    Guarded(res, [&] {
      const std::string name = Match(req, 1);
      const std::string version = Match(req, 2);
      if (core.ModelReady(name, version)) {
        res.status = 200;
        res.set_content(ModelReadyToJson(name, true), kJson);
        return;
      }
      // As Triton: an unknown model or version is NOT_FOUND (404), one
      // that exists but is not ready 400; UNAVAILABLE (loading, draining)
      // is 503.
      const auto metadata = core.ModelMetadata(name, version);
      if (!metadata.ok()) return ReplyStatus(res, metadata.status());
      ReplyError(res, 400,
                 absl::StrCat(DescribeModel(name, version), " is not ready"));
    });
  });
  server.Get(ModelRoute("/config"), [&core](const Request& req, Response& res) {
    Guarded(res, [&] {
      ReplyJson(res, core.ModelConfig(Match(req, 1), Match(req, 2)),
                &ModelConfigToJson);
    });
  });
  server.Get(ModelRoute("/stats"), [&core](const Request& req, Response& res) {
    Guarded(res, [&] {
      ReplyJson(res, core.ModelStatistics(Match(req, 1), Match(req, 2)),
                &ModelStatisticsToJson);
    });
  });
  server.Get(ModelRoute(""), [&core](const Request& req, Response& res) {
    Guarded(res, [&] {
      ReplyJson(res, core.ModelMetadata(Match(req, 1), Match(req, 2)),
                &ModelMetadataToJson);
    });
  });
  server.Post(ModelRoute("/infer"), [&core, max_body_bytes](
                                        const Request& req, Response& res,
                                        const httplib::ContentReader& reader) {
    Guarded(res, [&] { HandleInfer(core, max_body_bytes, req, res, reader); });
  });
}

}  // namespace fusion::api::v2

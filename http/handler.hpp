#pragma once

#include "protocol/principal.hpp"
#include "protocol/problem.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::http {

/// HTTP methods the router knows; the order matches `actors::metrics_registry::methods`.
enum class verb : std::uint8_t { get, head, post, put, patch, del, options, other };

/// The method's name ("DELETE" for `verb::del`).
std::string_view to_string(verb v);

/// The method named `name`, or `verb::other`.
verb verb_from_string(std::string_view name);

using header_list = std::vector<std::pair<std::string, std::string>>;

/// A complete, parsed request as handlers see it: no Beast types.
struct request {
  verb method = verb::get;
  std::string path;  ///< percent-encoded path, without the query
  std::string query; ///< after '?', without it; empty if none
  header_list headers;
  std::string body;
  std::string remote; ///< the peer's IP address

  /// The first header named `name` (case-insensitive), or an empty view.
  std::string_view header(std::string_view name) const;
};

/// One piece of a streamed body. `data` empty + `last` = the end. `failed` = abort: the
/// session closes the connection without the terminating chunk, so the client sees a truncated
/// body.
struct body_chunk {
  std::string data;
  bool last = false;
  bool failed = false;
};

/// Produces a streamed body piece by piece. The session calls it when it is ready for the
/// next piece (first right after the header was written, then after each chunk was written:
/// this is the back-pressure, at most one piece is buffered). The source must call `deliver`
/// exactly once per call, from any thread (typically a CAF thread), never blocking; it may
/// also call it inline (`deliver` only queues the piece, it never re-enters the source). A
/// source may set `last` together with non-empty `data`; an empty piece that is neither
/// `last` nor `failed` just asks to be called again. Once a write failed (the client left: seen
/// at the next write), a piece failed or the server shut down, the source is not called again
/// and is destroyed with what it captured; a late `deliver` is a no-op. Runs on an io thread.
using body_source = std::function<void(std::function<void(body_chunk)> deliver)>;

/// What a handler answers. `status` is the HTTP status; headers the session adds itself
/// (`Content-Length`, `Transfer-Encoding`, `Connection`, `Date`, `Server`, `X-Request-ID`)
/// must not be set here.
struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body; ///< ignored when `stream` is set
  header_list headers;
  /// Set: the body is streamed from this source and `body` is ignored. HTTP/1.1 gets
  /// `Transfer-Encoding: chunked` (no `Content-Length`) and the connection stays usable after
  /// the last chunk; HTTP/1.0 gets a close-delimited body (`Connection: close`). HEAD gets the
  /// header only and 204/304 no body: the source is then never called. The access log's
  /// duration and the latency histogram measure the time to the header (first byte).
  body_source stream;
};

/// Per-request facts the router and session fill in before calling a handler.
struct request_context {
  std::string request_id;
  std::string route; ///< the matched route template, e.g. "/problems/{code}"
  std::vector<std::pair<std::string, std::string>> params; ///< decoded path parameters
  std::string tenant_id;       ///< /v1 requests: the resolved tenant (empty elsewhere)
  std::string remote;          ///< the peer's IP address (audit entries)
  protocol::principal who;     ///< /v1 requests: who acts (anonymous, or why the credential failed)
  std::string tenant_settings; ///< /v1 requests: the tenant's settings (JSON object text)
  protocol::rate_info rate;    ///< /v1 requests: the rate-limit headers every response carries

  /// The decoded path parameter `name`, or an empty string.
  const std::string& param(std::string_view name) const;
};

/// The outcome of resolving a /v1 request's tenant: its id, or the problem to answer.
struct tenant_resolution {
  std::string tenant_id;
  protocol::principal who;
  std::string settings;
  protocol::errc error = protocol::errc::internal;
  std::string detail;
  protocol::rate_info rate; ///< the rate-limit headers (also on a 429)
  bool ok() const {
    return !tenant_id.empty();
  }
};

/// Resolves the tenant of a /v1 request and calls `done` exactly once, from any thread.
using tenant_resolver
  = std::function<void(const request&, std::function<void(tenant_resolution)> done)>;

/// Delivers the response. Call exactly once, from any thread; it never blocks.
using reply_fn = std::function<void(response)>;

/// Handles one request. Must not block: ask actors and reply from their answer.
using handler_fn = std::function<void(const request&, const request_context&, reply_fn)>;

/// True if `a` and `b` are equal ignoring ASCII letter case (header names, schemes).
bool iequals(std::string_view a, std::string_view b);

/// `s` with ASCII letters lower-cased (host names, media types, emails' ASCII).
std::string ascii_lower(std::string_view s);

/// A JSON response with `status` and an already serialized body.
response json_response(int status, std::string body);

/// The problem response for `code`, addressed to `req`/`ctx`.
response problem_response(protocol::errc code, const request& req, const request_context& ctx,
                          std::string detail = {});

/// 400 `validation-failed` for `req`/`ctx` with `errors` (JSON pointers into the input).
response validation_problem(const request& req, const request_context& ctx, std::string detail,
                            std::vector<protocol::field_error> errors);

/// The problem response for a fully built problem (request id and instance included).
response problem_response(const protocol::problem& p);

} // namespace troupe::http

#pragma once

// The outbound HTTP client of webhook deliveries (docs/webhooks.md "Sending"): Beast on its
// own io threads, keep-alive connections pooled per scheme, host and port, TLS verified
// against the system trust store, no redirects, a total deadline per request, and the
// address guard applied to every address it connects to. Beast stays inside the .cpp.

#include "protocol/webhooks.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace troupe::actors {

struct outbound_request {
  protocol::webhooks::target target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string method = "POST"; ///< an HTTP method name (http.request jobs send others)
  std::string user_agent = "Troupe-Webhooks/1";
  /// The deadline of this request (0: the client's `timeout`).
  std::chrono::milliseconds timeout{0};
};

struct outbound_response {
  int status = 0;          ///< 0: no response (see `error`)
  std::string body;        ///< at most `response_body_limit` bytes, NULs removed
  std::string retry_after; ///< the Retry-After header, if any
  std::string error;       ///< why there is no response
  std::int64_t duration_ms = 0;
};

struct http_client_options {
  std::chrono::milliseconds timeout{15000};
  bool allow_private_targets = false;
  std::size_t threads = 1;
  std::size_t max_idle_per_host = 256;
  /// Requests in flight at once over all hosts (sockets stay bounded); more wait their turn,
  /// and their deadline starts when they leave the queue.
  std::size_t max_active = 256;
  std::size_t response_body_limit = 4096; ///< bytes kept of a response body
};

class http_client {
public:
  explicit http_client(http_client_options options);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Sends `request` and calls `done` exactly once, on an io thread of the client.
  void send(outbound_request request, std::function<void(outbound_response)> done);

  /// Stops the io threads; pending requests end with an error.
  void stop();

  struct impl; // public so that the .cpp's request objects can name it

private:
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::actors

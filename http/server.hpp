#pragma once

#include "http/router.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace troupe::actors {
class metrics_registry;
}

namespace troupe::http {

/// A loaded TLS certificate and key (opaque: OpenSSL stays inside server.cpp).
struct tls_context;

/// Loads the PEM certificate chain and private key for HTTPS and checks that they match.
/// On failure returns nullptr and sets `error` to one line naming the configuration key.
std::shared_ptr<tls_context> load_tls_context(const std::string& cert_file,
                                              const std::string& key_file, std::string& error);

/// Limits and sockets of one HTTP/1.1 server.
struct server_options {
  int listen_fd = -1;        ///< a bound, listening TCP socket; the server dup()s it
  std::uint32_t threads = 1; ///< io threads, one io_context each
  std::uint64_t max_body_bytes = 1048576;
  std::uint32_t max_header_bytes = 16384;
  std::chrono::milliseconds read_timeout{10000}; ///< a whole request, first byte to last
  std::chrono::milliseconds idle_timeout{60000}; ///< keep-alive wait for the next request
  std::uint32_t max_connections = 10000;
  std::shared_ptr<tls_context> tls; ///< set: HTTPS only
  /// Runs before routing for every path under /v1 (tenancy: API.md "Tenancy and
  /// authentication"); its problem, if any, is the answer.
  tenant_resolver resolve_tenant;
};

/// Boost.Beast HTTP/1.1 server: keep-alive, limits, graceful drain, one log line and one
/// metrics observation per request. Handlers run on io threads and must not block.
/// Beast stays inside server.cpp; this header is cheap to include.
class server {
public:
  /// `on_fatal` is called (from an io thread) if an io thread dies of an exception.
  server(server_options options, std::shared_ptr<router> routes,
         std::shared_ptr<actors::metrics_registry> metrics, std::shared_ptr<spdlog::logger> log,
         std::function<void(std::string)> on_fatal);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Starts the io threads and accepting. Throws std::system_error if the socket is unusable.
  void start();

  /// Stops accepting, closes idle connections, lets in-flight requests finish (their
  /// responses say `Connection: close`), and after `grace` closes whatever is left; then
  /// joins the io threads. Blocking; call once, from a thread that is not an io thread.
  void shutdown(std::chrono::milliseconds grace);

  /// The port the listening socket is bound to.
  std::uint16_t port() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace troupe::http

#pragma once

#include "http/routes.hpp"
#include "http/server.hpp"

#include <caf/fwd.hpp>

#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace troupe::http {

/// Everything the `http_front` actor needs to (re)start its server.
struct front_config {
  server_options server;
  std::string display_address; ///< for the "listening" log line
  std::string scheme = "http"; ///< "https" when server.tls is set
  std::chrono::milliseconds shutdown_grace{10000};
  services svc;
  std::shared_ptr<actors::metrics_registry> metrics;
  std::shared_ptr<spdlog::logger> log;
};

/// Spawns the `http_front` actor (detached: its shutdown blocks while connections drain).
/// It owns the Beast server: starts it, restarts nothing itself (its supervisor does), and on
/// an exit message drains for `shutdown_grace` before exiting. An io thread that dies makes
/// it exit with an error, so the supervisor starts a fresh server.
caf::actor spawn_http_front(caf::local_actor* parent, front_config config);

} // namespace troupe::http

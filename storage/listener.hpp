#pragma once

// LISTEN on one PostgreSQL channel (docs/jobs.md "Pickup across nodes"). Blocking: use it
// only on a thread of its own.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace troupe::storage {

class pg_listener {
public:
  /// Connects with `conninfo` and LISTENs on `channel`; nullptr + `error` on failure.
  static std::unique_ptr<pg_listener> open(const std::string& conninfo, const std::string& channel,
                                           std::string& error);

  ~pg_listener();
  pg_listener(const pg_listener&) = delete;
  pg_listener& operator=(const pg_listener&) = delete;

  /// Waits up to `timeout` for notifications and answers their payloads (empty after a
  /// timeout). False in `ok` when the connection is lost (open a new listener).
  std::vector<std::string> wait(std::chrono::milliseconds timeout, bool& ok);

private:
  struct impl;
  explicit pg_listener(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace troupe::storage

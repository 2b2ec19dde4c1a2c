// The embedded default of DESIGN.md "Data": a private PostgreSQL run from the system's
// binaries as a child process, reachable only through a unix socket in its own directory.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace troupe::storage {

/// Where and how the embedded PostgreSQL runs (API.md `database.embedded-dir`).
struct embedded_options {
  std::string dir; // database.embedded-dir (relative → made absolute)
  std::string bin_dir = "/usr/lib/postgresql/15/bin";
  std::chrono::milliseconds start_timeout{30000};
};

/// A private PostgreSQL server owned by this process: `<dir>/data` holds the cluster,
/// `<dir>/postgres.log` its output and `<dir>/.s.PGSQL.5432` its only socket.
///
/// Every member function blocks; call them from main, before the actor system starts and
/// after it stopped, never on a CAF thread. Not thread-safe.
class embedded_postgres {
public:
  /// Initialises (first time) and starts PostgreSQL, waits until it accepts connections and
  /// database "troupe" exists. Blocking. On failure returns nullptr and sets `error` (one line).
  ///
  /// Call it from the main thread: the server gets SIGINT (fast shutdown) when the thread that
  /// started it exits, which for the main thread means when the process dies, even by SIGKILL.
  /// When running as root the server runs as the OS user `postgres`. SIGCHLD must not be
  /// ignored (the child is reaped with waitpid).
  static std::unique_ptr<embedded_postgres> start(const embedded_options& options,
                                                  std::string& error);

  embedded_postgres(const embedded_postgres&) = delete;
  embedded_postgres& operator=(const embedded_postgres&) = delete;

  /// Stops the server (see stop()).
  ~embedded_postgres();

  /// libpq connection string for `user` on database "troupe" over the unix socket.
  std::string conninfo(const std::string& user = "postgres") const;

  /// Fast shutdown; waits for the child. Idempotent.
  ///
  /// Sends SIGINT and waits up to 30 s, then SIGQUIT (5 s), then SIGKILL. The outcome,
  /// including the exit status, is added to notes(). Blocking.
  void stop();

  /// The postmaster's process id, or -1 once stopped.
  int pid() const;

  /// The embedded directory, absolute and normalised.
  const std::string& dir() const; // absolute

  /// True if this start ran initdb.
  bool initialised_now() const;

  /// Returns and forgets the events worth logging since the last call, one line each, such
  /// as "removed stale postmaster.pid (pid 123 not running)" or the exit status after stop().
  std::vector<std::string> notes();

private:
  embedded_postgres() = default;

  std::string dir_;
  int pid_ = -1;
  bool initialised_now_ = false;
  std::vector<std::string> notes_;
};

} // namespace troupe::storage

#pragma once

#include <caf/expected.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

// libpq's own struct names (PGconn and PGresult are typedefs of these).
struct pg_conn;
struct pg_result;

namespace troupe::storage {

/// A named SQL statement, prepared once per connection on first use. The name shows up in
/// our logs and in pg_stat_statements.
struct pg_statement {
  const char* name;
  const char* sql;
};

/// Statement parameters in text format; nullopt is SQL NULL.
using pg_params = std::vector<std::optional<std::string>>;

/// The rows of one result. PGresult never leaves storage/.
class pg_rows {
public:
  pg_rows() = default;
  explicit pg_rows(pg_result* result);

  int size() const;
  int columns() const;
  /// The text of a cell; empty for NULL.
  std::string_view get(int row, int column) const;
  bool is_null(int row, int column) const;
  std::optional<std::string> optional(int row, int column) const;
  /// Rows affected by INSERT/UPDATE/DELETE.
  std::size_t affected() const;

private:
  std::shared_ptr<pg_result> result_;
};

/// `conninfo` (a libpq URL or key=value string) as a key=value string in which every keyword
/// of `replacements` takes the given value (an empty value removes the keyword).
/// nullopt + `error` if unparsable.
std::optional<std::string>
with_parameters(const std::string& conninfo,
                const std::vector<std::pair<std::string, std::string>>& replacements,
                std::string& error);

/// `conninfo` with its user and password replaced; an empty `password` leaves none.
std::optional<std::string> with_login(const std::string& conninfo, const std::string& user,
                                      const std::string& password, std::string& error);

/// One libpq connection. Blocking: use it only inside a detached `db_connection` actor, or
/// in main and tests.
///
/// Failures are `caf::error`s made from `protocol::errc`: a lost or refused connection,
/// shutdown, statement timeout or lack of resources is `service_unavailable`; a unique or
/// foreign-key violation is `conflict`; anything else is `internal`. The error's context
/// carries the SQLSTATE and PostgreSQL's message for the log (never for clients).
class pg_connection {
public:
  /// Connects with `conninfo` (a libpq URL or key=value string). nullptr + `error` on failure.
  static std::unique_ptr<pg_connection> connect(const std::string& conninfo, std::string& error);

  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  /// Runs a named statement with parameters (extended protocol, prepared on first use).
  [[nodiscard]] caf::expected<pg_rows> execute(const pg_statement& statement,
                                               const pg_params& params = {});

  /// Starts a transaction and runs its first statement in one round trip (libpq pipeline
  /// mode): BEGIN, then `set_tenant` with `tenant` if there is one, then `statement`. Any
  /// failure is returned; the caller rolls back. See docs/performance.md for why.
  [[nodiscard]] caf::expected<pg_rows> begin_with(const pg_statement& set_tenant,
                                                  const std::optional<std::string>& tenant,
                                                  const pg_statement& statement,
                                                  const pg_params& params);

  /// Runs `statement` and COMMIT in one round trip (pipeline mode), preceded by BEGIN and
  /// `begin_with_tenant` (with `tenant`) when that is given: a whole transaction in one round
  /// trip. Any failure is returned (COMMIT does not run after a failed statement); the caller
  /// rolls back.
  [[nodiscard]] caf::expected<pg_rows> pipelined(const pg_statement* begin_with_tenant,
                                                 const std::optional<std::string>& tenant,
                                                 const pg_statement& statement,
                                                 const pg_params& params, bool commit);

  /// Runs one or more statements without parameters (simple protocol): migrations, BEGIN.
  [[nodiscard]] caf::expected<pg_rows> exec(const std::string& sql);

  /// True while the connection is usable.
  bool healthy() const;

  /// Reconnects after a failure; prepared statements are prepared again on next use.
  bool reset();

  /// The server's process id for this session (tests kill it to simulate failures).
  int backend_pid() const;

private:
  explicit pg_connection(pg_conn* conn);
  caf::error failure(pg_result* result, std::string_view what);

  pg_conn* conn_;
  std::unordered_set<std::string> prepared_;
};

} // namespace troupe::storage

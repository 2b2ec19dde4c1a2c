#pragma once

#include "protocol/actors.hpp"
#include "protocol/type_ids.hpp"
#include "storage/pg.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <any>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace troupe::storage {

/// The statements of one unit of work, inside its transaction. When the work belongs to a
/// tenant, `troupe.tenant_id` is already set for this transaction only (`set_config(…,
/// true)`), so forced row-level security filters every row.
class pg_transaction {
public:
  pg_transaction(pg_connection& conn, std::optional<std::string> tenant);

  /// Runs a statement. The first one also begins the transaction and sets the tenant, in
  /// the same round trip (pipeline mode).
  [[nodiscard]] caf::expected<pg_rows> execute(const pg_statement& statement,
                                               const pg_params& params = {});
  const std::optional<std::string>& tenant() const {
    return tenant_;
  }

  /// Runs a last statement and COMMIT in the same round trip (with BEGIN too if nothing ran
  /// yet): the transaction is over when this returns. Use it only as a body's final step.
  [[nodiscard]] caf::expected<pg_rows> execute_and_commit(const pg_statement& statement,
                                                          const pg_params& params = {});

  /// True once the transaction was begun (a statement was sent).
  bool begun() const {
    return begun_;
  }

  /// True once execute_and_commit committed: the pool sends no COMMIT of its own.
  bool committed() const {
    return committed_;
  }

  /// True if the first statement found the session dead: nothing ran, a retry is safe.
  bool found_dead_session() const {
    return found_dead_session_;
  }

private:
  pg_connection& conn_;
  std::optional<std::string> tenant_;
  bool begun_ = false;
  bool committed_ = false;
  bool found_dead_session_ = false;
};

/// One unit of work: runs in one transaction on one connection, committed if it returns a
/// value and rolled back if it returns an error. Runs on a `db_connection` thread: it may
/// block on PostgreSQL, nothing else. If its first statement finds the session dead (nothing
/// ran, nothing is committed), it runs once more on a new connection: do only database work.
struct db_work {
  std::optional<std::string> tenant; ///< a tenant id (UUID); nullopt for platform work
  std::function<caf::expected<std::any>(pg_transaction&)> body;
};

/// What a unit of work produced (its `std::any`), after COMMIT.
struct db_reply {
  std::any value;
};

/// One detached actor per PostgreSQL connection.
using db_connection_actor
  = caf::typed_actor<caf::replies_to<protocol::run_atom, db_work>::with<db_reply>>;

/// The pool: runs work on its connections, queues at most `queue_limit` units and refuses
/// more with `service_unavailable` (callers answer 503 with Retry-After), and answers
/// `ready_atom` with the database check of `/readyz`.
using db_pool_actor
  = caf::typed_actor<caf::replies_to<protocol::run_atom, db_work>::with<db_reply>,
                     caf::replies_to<protocol::ready_atom>::with<protocol::readiness>,
                     caf::replies_to<caf::get_atom>::with<protocol::db_pool_stats>>;

struct db_pool_options {
  std::string conninfo;          ///< how each connection logs in (the server's role)
  std::size_t size = 8;          ///< database.pool-size
  std::size_t queue_limit = 512; ///< waiting units beyond the busy connections
  std::chrono::milliseconds statement_timeout{30000};
};

/// Spawns the pool and its `options.size` detached connections (linked to it). Connections
/// connect lazily and reconnect after a failure, so a restarted PostgreSQL is picked up
/// without restarting Troupe: work in flight when it went away fails, later work succeeds.
db_pool_actor spawn_db_pool(caf::actor_system& sys, db_pool_options options);

/// Spawns the pool as a child of `parent` (for a supervisor's child_spec).
db_pool_actor spawn_db_pool(caf::local_actor* parent, db_pool_options options);

} // namespace troupe::storage

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::storage::db_work)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::storage::db_reply)

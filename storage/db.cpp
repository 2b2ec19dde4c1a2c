#include "storage/db.hpp"

#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <deque>
#include <exception>

namespace troupe::storage {

namespace {

constexpr pg_statement set_tenant_sql{
  "troupe_set_tenant",
  "SELECT set_config('troupe.tenant_id', $1, true)",
};

constexpr pg_statement ping_sql{"troupe_ping", "SELECT 1"};

// -- db_connection ---------------------------------------------------------------------------

struct connection_state {
  static inline const char* name = "db_connection";
  std::string conninfo;
  std::chrono::milliseconds statement_timeout{30000};
  std::unique_ptr<pg_connection> conn;
};

using connection_pointer = db_connection_actor::stateful_pointer<connection_state>;

// Connects (or reconnects after a failure). Blocking, on this detached actor's thread.
caf::error ensure_connected(connection_state& st) {
  if (st.conn && st.conn->healthy()) {
    return caf::none;
  }
  st.conn.reset();
  std::string error;
  auto conn = pg_connection::connect(st.conninfo, error);
  if (!conn) {
    return caf::make_error(protocol::errc::service_unavailable, "database unreachable", error);
  }
  auto set = conn->exec("SET statement_timeout = " + std::to_string(st.statement_timeout.count())
                        + "; SET application_name = 'troupe'");
  if (!set) {
    return std::move(set.error());
  }
  st.conn = std::move(conn);
  return caf::none;
}

caf::expected<db_reply> run_work(connection_state& st, db_work& work, bool retried = false) {
  if (auto err = ensure_connected(st)) {
    return err;
  }
  auto& conn = *st.conn;
  pg_transaction tx{conn, work.tenant};
  auto fail = [&](caf::error err) -> caf::expected<db_reply> {
    if (!conn.healthy()) {
      st.conn.reset(); // reconnect on next use
    } else if (tx.begun()) {
      (void)conn.exec("ROLLBACK");
    }
    return err;
  };
  caf::expected<std::any> result{caf::error{}};
  try {
    result = work.body(tx);
  } catch (const std::exception& e) {
    return fail(caf::make_error(protocol::errc::internal, "unit of work threw", e.what()));
  }
  if (!result) {
    // PQstatus cannot see that an idle session died (a PostgreSQL restart, a terminated
    // backend): the first statement is the first thing to find out. Nothing was committed,
    // so reconnecting and running the work again is safe; a second failure is real.
    if (tx.found_dead_session() && !retried) {
      st.conn.reset();
      return run_work(st, work, true);
    }
    return fail(std::move(result.error()));
  }
  if (!tx.begun() || tx.committed()) {
    return db_reply{std::move(*result)}; // nothing ran, or the body committed its last step
  }
  if (auto committed = conn.exec("COMMIT"); !committed) {
    return fail(std::move(committed.error()));
  }
  return db_reply{std::move(*result)};
}

db_connection_actor::behavior_type db_connection(connection_pointer self, std::string conninfo,
                                                 std::chrono::milliseconds statement_timeout) {
  self->state.conninfo = std::move(conninfo);
  self->state.statement_timeout = statement_timeout;
  return {
    [self](protocol::run_atom, db_work& work) -> caf::result<db_reply> {
      auto reply = run_work(self->state, work);
      if (!reply) {
        return std::move(reply.error());
      }
      return std::move(*reply);
    },
  };
}

// -- db_pool -----------------------------------------------------------------------------------

using completion = std::function<void(caf::expected<db_reply>)>;

struct pending_work {
  db_work work;
  completion done;
  std::chrono::steady_clock::time_point queued_at;
};

struct slot {
  db_connection_actor actor;
  bool busy = false;
};

struct pool_state {
  static inline const char* name = "db_pool";
  db_pool_options options;
  std::vector<slot> slots;
  std::deque<pending_work> queue;
};

using pool_pointer = db_pool_actor::stateful_pointer<pool_state>;

// How long work may wait in the queue: callers stop waiting after 5 s (http::ask_timeout),
// so running older work would only delay fresh work.
constexpr std::chrono::seconds max_queue_wait{5};

void dispatch(pool_pointer self, std::size_t index, db_work work, const completion& done);

void release(pool_pointer self, std::size_t index) {
  auto& st = self->state;
  st.slots[index].busy = false;
  const auto now = std::chrono::steady_clock::now();
  while (!st.queue.empty()) {
    auto next = std::move(st.queue.front());
    st.queue.pop_front();
    if (now - next.queued_at > max_queue_wait) {
      next.done(caf::make_error(protocol::errc::service_unavailable, "database queue wait"));
      continue;
    }
    dispatch(self, index, std::move(next.work), std::move(next.done));
    return;
  }
}

void dispatch(pool_pointer self, std::size_t index, db_work work, const completion& done) {
  auto& s = self->state.slots[index];
  s.busy = true;
  // No timeout here: statement_timeout bounds every statement, and a connection always
  // answers (or dies, which takes the pool down through the link).
  self->request(s.actor, caf::infinite, protocol::run_atom_v, std::move(work))
    .then(
      [self, index, done](db_reply& reply) {
        done(std::move(reply));
        release(self, index);
      },
      [self, index, done](caf::error& err) {
        done(std::move(err));
        release(self, index);
      });
}

// Runs `work` now on an idle connection, queues it, or refuses it when the queue is full.
void submit(pool_pointer self, db_work work, completion done) {
  auto& st = self->state;
  for (std::size_t i = 0; i < st.slots.size(); ++i) {
    if (!st.slots[i].busy) {
      dispatch(self, i, std::move(work), std::move(done));
      return;
    }
  }
  if (st.queue.size() >= st.options.queue_limit) {
    done(caf::make_error(protocol::errc::service_unavailable, "database pool saturated"));
    return;
  }
  st.queue.push_back({std::move(work), std::move(done), std::chrono::steady_clock::now()});
}

db_pool_actor::behavior_type db_pool(pool_pointer self, db_pool_options options) {
  auto& st = self->state;
  st.options = std::move(options);
  for (std::size_t i = 0; i < std::max<std::size_t>(1, st.options.size); ++i) {
    auto conn = self->spawn<caf::detached + caf::linked>(db_connection, st.options.conninfo,
                                                         st.options.statement_timeout);
    st.slots.push_back({std::move(conn), false});
  }
  self->system().registry().put(protocol::db_pool_key, self);
  return {
    [self](protocol::run_atom, db_work& work) -> caf::result<db_reply> {
      auto rp = self->make_response_promise<db_reply>();
      submit(self, std::move(work), [rp](caf::expected<db_reply> reply) mutable {
        if (reply) {
          rp.deliver(std::move(*reply));
        } else {
          rp.deliver(std::move(reply.error()));
        }
      });
      return rp;
    },
    [self](caf::get_atom) {
      protocol::db_pool_stats stats;
      for (const auto& s : self->state.slots) {
        ++(s.busy ? stats.busy : stats.idle);
      }
      stats.waiting = static_cast<std::uint32_t>(self->state.queue.size());
      return stats;
    },
    [self](protocol::ready_atom) -> caf::result<protocol::readiness> {
      auto rp = self->make_response_promise<protocol::readiness>();
      db_work ping{std::nullopt, [](pg_transaction& tx) -> caf::expected<std::any> {
                     auto rows = tx.execute(ping_sql);
                     if (!rows) {
                       return std::move(rows.error());
                     }
                     return std::any{};
                   }};
      submit(self, std::move(ping), [rp](caf::expected<db_reply> reply) mutable {
        protocol::readiness r;
        r.ready = static_cast<bool>(reply);
        r.checks.emplace("database", reply ? "ok" : protocol::describe(reply.error()));
        rp.deliver(std::move(r));
      });
      return rp;
    },
  };
}

} // namespace

pg_transaction::pg_transaction(pg_connection& conn, std::optional<std::string> tenant)
    : conn_(conn), tenant_(std::move(tenant)) {}

caf::expected<pg_rows> pg_transaction::execute_and_commit(const pg_statement& statement,
                                                          const pg_params& params) {
  const bool first = !begun_;
  begun_ = true;
  auto rows = conn_.pipelined(first ? &set_tenant_sql : nullptr, tenant_, statement, params, true);
  if (rows) {
    committed_ = true;
  } else if (first && !conn_.healthy()) {
    found_dead_session_ = true;
  }
  return rows;
}

caf::expected<pg_rows> pg_transaction::execute(const pg_statement& statement,
                                               const pg_params& params) {
  if (begun_) {
    return conn_.execute(statement, params);
  }
  begun_ = true;
  auto rows = conn_.begin_with(set_tenant_sql, tenant_, statement, params);
  if (!rows && !conn_.healthy()) {
    found_dead_session_ = true;
  }
  return rows;
}

db_pool_actor spawn_db_pool(caf::actor_system& sys, db_pool_options options) {
  return sys.spawn(db_pool, std::move(options));
}

db_pool_actor spawn_db_pool(caf::local_actor* parent, db_pool_options options) {
  return parent->spawn(db_pool, std::move(options));
}

} // namespace troupe::storage

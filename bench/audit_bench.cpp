// What does the audit log cost a mutation? (docs/performance.md, "Audit (issue 4)").
//
//   troupe_bench_audit CONNINFO [SECONDS]
//
// CONNINFO reaches a PostgreSQL as a superuser (scripts/bench passes its throw-away cluster);
// the bench creates the database bench_audit there, migrates it and adds a tenant-owned table
// bench_counters (forced row-level security, like every tenant table). It then runs the same
// mutation two ways, with the server's real pool (8 connections), directory and tenant actors:
//
//   plain     one unit of work on the pool: UPDATE one counter (… RETURNING), COMMIT;
//   audited   the same body as audited work through the tenant actor: its entry (before and
//             after images, the actor's IP and user agent sealed under a data key) is
//             appended in the same transaction, several units per transaction when they
//             queue up (group commit).
//
// 64 clients (actors, each with one request in flight) on 1 tenant and on 16 tenants, each
// client updating its own row. SECONDS (default 5) per case after a 1 s warm-up. One line per
// case: ops/s, p50 and p99 latency; the audited line also gives its ratio to plain. Exits 1 on
// any failed operation. TROUPE_BENCH_AUDIT_SQL, if set, runs as the owner after the
// migrations (experiments, e.g. other indexes on audit_log; docs/performance.md).

#include "actors/directory/directory.hpp"
#include "actors/tenants/tenants_service.hpp"
#include "protocol/actors.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/type_ids.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"
#include "storage/migrations.hpp"
#include "storage/pg.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace troupe;
using clock_type = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "troupe_bench_audit: %s\n", what.c_str());
  std::exit(1);
}

void run(storage::pg_connection& conn, const std::string& sql) {
  if (auto r = conn.exec(sql); !r) {
    die(sql.substr(0, 60) + "…: " + protocol::describe(r.error()) + " "
        + caf::to_string(r.error().context()));
  }
}

std::string tenant_id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "0190a3c4-0000-7000-8000-%012d", i + 1);
  return buf;
}

constexpr int clients = 64;
constexpr int max_tenants = 16;

struct config : caf::actor_system_config {
  config() {
    add_message_types<caf::id_block::troupe>();
    set("scheduler.max-threads", std::size_t{2});
  }
};

struct results {
  std::mutex mutex;
  std::vector<double> latencies_us; // of operations that finished inside the window
  std::atomic<std::uint64_t> failures{0};
  std::string first_failure;
};

// The mutation: its body, audited or not.
caf::expected<std::any> bump(storage::pg_transaction& tx, int row, protocol::audit_change* change) {
  static constexpr storage::pg_statement update{
    "bench_bump", "UPDATE bench_counters SET value = value + 1 WHERE tenant_id = "
                  "troupe_current_tenant() AND id = $1::int RETURNING value"};
  auto rows = tx.execute(update, {std::to_string(row)});
  if (!rows) {
    return std::move(rows.error());
  }
  const auto value = std::stoll(std::string{rows->get(0, 0)});
  if (change != nullptr) {
    change->resource_type = "counter";
    change->resource_id = std::to_string(row);
    change->before = {{"value", value - 1}};
    change->after = {{"value", value}};
  }
  return std::any{value};
}

struct client_args {
  bool audited = false;
  std::string tenant;
  int row = 0;
  clock_type::time_point start; // measure from here
  clock_type::time_point stop;  // no new operation after this
  std::shared_ptr<results> out;
};

void client(caf::event_based_actor* self, client_args args) {
  auto latencies = std::make_shared<std::vector<double>>();
  auto step = std::make_shared<std::function<void()>>();
  *step = [self, args, latencies, step] {
    const auto began = clock_type::now();
    if (began >= args.stop) {
      std::lock_guard<std::mutex> guard{args.out->mutex};
      args.out->latencies_us.insert(args.out->latencies_us.end(), latencies->begin(),
                                    latencies->end());
      self->quit();
      return;
    }
    auto done = [began, args, latencies, step]() {
      const auto now = clock_type::now();
      if (began >= args.start) {
        latencies->push_back(std::chrono::duration<double, std::micro>(now - began).count());
      }
      (*step)();
    };
    auto failed = [args, step](caf::error& err) {
      if (args.out->failures.fetch_add(1) == 0) {
        std::lock_guard<std::mutex> guard{args.out->mutex};
        args.out->first_failure = protocol::describe(err) + " " + caf::to_string(err.context());
      }
      (*step)();
    };
    const int row = args.row;
    if (args.audited) {
      auto dir = self->system().registry().get<protocol::directory_actor>(protocol::directory_key);
      protocol::audit_origin origin;
      origin.actor_type = "user";
      origin.actor_id = "bench-user-" + std::to_string(row);
      origin.ip = "203.0.113.9";
      origin.user_agent = "troupe_bench_audit";
      origin.request_id = "bench";
      protocol::audited_work work{
        origin, "counter.bumped",
        [row](storage::pg_transaction& tx, protocol::audit_change& change) {
          return bump(tx, row, &change);
        }};
      self
        ->request(dir, std::chrono::seconds{30}, protocol::run_atom_v, args.tenant, std::move(work))
        .then([done](protocol::audited_result&) { done(); }, failed);
    } else {
      auto pool = self->system().registry().get<storage::db_pool_actor>(protocol::db_pool_key);
      storage::db_work work{args.tenant, [row](storage::pg_transaction& tx) {
                              return bump(tx, row, nullptr);
                            }};
      self->request(pool, std::chrono::seconds{30}, protocol::run_atom_v, std::move(work))
        .then([done](storage::db_reply&) { done(); }, failed);
    }
  };
  (*step)();
}

struct measured {
  double ops = 0;
  double p50 = 0;
  double p99 = 0;
};

measured measure(caf::actor_system& sys, bool audited, int tenants, double seconds) {
  auto out = std::make_shared<results>();
  const auto start = clock_type::now() + std::chrono::seconds{1}; // warm-up
  const auto stop
    = start
      + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  {
    caf::scoped_actor self{sys};
    for (int c = 0; c < clients; ++c) {
      client_args args{audited, tenant_id(c % tenants), c, start, stop, out};
      auto a = sys.spawn(client, std::move(args));
      self->monitor(a);
    }
    for (int c = 0; c < clients; ++c) {
      self->receive([](caf::down_msg&) {});
    }
  }
  if (out->failures > 0) {
    die(std::to_string(out->failures.load()) + " operations failed, first: " + out->first_failure);
  }
  auto& l = out->latencies_us;
  std::sort(l.begin(), l.end());
  measured m;
  m.ops = static_cast<double>(l.size()) / seconds;
  if (!l.empty()) {
    m.p50 = l[l.size() / 2] / 1000.0;
    m.p99 = l[std::min(l.size() - 1, l.size() * 99 / 100)] / 1000.0;
  }
  return m;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    die("usage: troupe_bench_audit CONNINFO [SECONDS]");
  }
  const std::string admin_conninfo = argv[1];
  const double seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
  std::string error;
  auto owner_conninfo
    = storage::with_parameters(admin_conninfo, {{"dbname", "bench_audit"}}, error);
  auto app_conninfo
    = owner_conninfo ? storage::with_login(*owner_conninfo, "troupe_app", "", error) : std::nullopt;
  if (!owner_conninfo || !app_conninfo) {
    die("bad conninfo: " + error);
  }
  {
    auto admin = storage::pg_connection::connect(admin_conninfo, error);
    if (!admin) {
      die("cannot connect: " + error);
    }
    run(*admin, "DROP DATABASE IF EXISTS bench_audit WITH (FORCE)");
    run(*admin, "CREATE DATABASE bench_audit");
    auto owner = storage::pg_connection::connect(*owner_conninfo, error);
    if (!owner) {
      die("cannot connect to bench_audit: " + error);
    }
    if (auto migrated = storage::migrate(*owner); !migrated) {
      die("migrations failed: " + protocol::describe(migrated.error()));
    }
    run(*owner, "CREATE TABLE bench_counters (tenant_id uuid NOT NULL REFERENCES tenants (id), "
                "id int NOT NULL, value bigint NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, id));"
                "ALTER TABLE bench_counters ENABLE ROW LEVEL SECURITY;"
                "ALTER TABLE bench_counters FORCE ROW LEVEL SECURITY;"
                "CREATE POLICY tenant_isolation ON bench_counters USING (tenant_id = "
                "troupe_current_tenant()) WITH CHECK (tenant_id = troupe_current_tenant());"
                "GRANT SELECT, UPDATE ON bench_counters TO troupe_app");
    if (const char* extra = std::getenv("TROUPE_BENCH_AUDIT_SQL"); extra != nullptr && *extra) {
      run(*owner, extra); // experiments: e.g. other indexes on audit_log
    }
    for (int t = 0; t < max_tenants; ++t) {
      run(*owner, "INSERT INTO tenants (id, slug, name) VALUES ('" + tenant_id(t) + "', 'bench-"
                    + std::to_string(t) + "', 'Bench')");
      run(*owner, "INSERT INTO bench_counters (tenant_id, id) SELECT '" + tenant_id(t)
                    + "', g FROM generate_series(0, " + std::to_string(clients - 1) + ") g");
    }
  }
  config cfg;
  caf::actor_system sys{cfg};
  auto secrets = storage::audit_secrets::derive(protocol::crypto::random_bytes(32));
  storage::db_pool_options pool_options;
  pool_options.conninfo = *app_conninfo;
  pool_options.size = 8;
  auto pool = storage::spawn_db_pool(sys, pool_options);
  caf::scoped_actor self{sys};
  self->request(pool, std::chrono::seconds{10}, protocol::ready_atom_v)
    .receive([](protocol::readiness&) {}, [](caf::error& e) { die(protocol::describe(e)); });
  auto tenants = actors::spawn_tenants_service(self.operator->(), secrets);
  actors::directory_options dopts;
  auto* system = &sys;
  dopts.loader = [system] {
    return system->registry().get<protocol::tenant_loader_actor>(protocol::tenants_key);
  };
  dopts.tenant.audit = secrets;
  auto dir = actors::spawn_directory(sys, dopts);
  std::printf("audit bench: pool=8 clients=%d seconds=%.0f (after a 1 s warm-up)\n", clients,
              seconds);
  for (const int t : {1, max_tenants}) {
    const auto plain = measure(sys, false, t, seconds);
    std::printf("audit-off  tenants=%-2d c=%d %8.0f ops/s  p50=%.2fms  p99=%.2fms\n", t, clients,
                plain.ops, plain.p50, plain.p99);
    const auto audited = measure(sys, true, t, seconds);
    std::printf("audit-on   tenants=%-2d c=%d %8.0f ops/s  p50=%.2fms  p99=%.2fms  %.2fx "
                "audit-off (cost %.0f%%)\n",
                t, clients, audited.ops, audited.p50, audited.p99, audited.ops / plain.ops,
                (1.0 - audited.ops / plain.ops) * 100.0);
    std::fflush(stdout);
  }
  {
    auto owner = storage::pg_connection::connect(*owner_conninfo, error);
    if (owner) {
      auto rows = owner->exec("SELECT count(*) FROM audit_log");
      if (rows) {
        std::printf("audit entries written: %s\n", std::string{rows->get(0, 0)}.c_str());
      }
    }
  }
  for (const auto& a : {caf::actor_cast<caf::actor>(dir), caf::actor_cast<caf::actor>(tenants),
                        caf::actor_cast<caf::actor>(pool)}) {
    self->send_exit(a, caf::exit_reason::user_shutdown);
  }
  return 0;
}

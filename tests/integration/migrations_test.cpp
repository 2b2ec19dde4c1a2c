#define CAF_SUITE storage.migrations

#include "storage/migrations.hpp"

#include "protocol/error.hpp"
#include "storage/pg.hpp"

#include "tests/support/pg_fixture.hpp"

#include <caf/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace troupe;
using tests::column;
using tests::query;

namespace {

// The advisory lock key migrate() serialises on (storage/migrations.cpp, "troupe" in ASCII).
constexpr const char* migration_lock = "111546451011189";

std::vector<int> all_versions() {
  std::vector<int> out;
  for (const auto& m : storage::migrations()) {
    out.push_back(m.version);
  }
  return out;
}

std::string joined(const std::vector<int>& versions) {
  std::string out;
  for (const auto v : versions) {
    out += (out.empty() ? "" : ",") + std::to_string(v);
  }
  return out;
}

// A child process that connects and migrates, then reports "ok <versions>" or "error ..." on
// its pipe and exits 0 on success. Runs no CAF code: only libpq, write and _exit.
struct migrating_child {
  pid_t pid = -1;
  int out = -1; // the read end in the parent

  static migrating_child start(const std::string& conninfo) {
    int fds[2];
    if (::pipe(fds) != 0) {
      CAF_FAIL("pipe failed");
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      CAF_FAIL("fork failed");
    }
    if (pid == 0) {
      ::close(fds[0]);
      std::string report;
      std::string error;
      int status = 1;
      if (auto conn = storage::pg_connection::connect(conninfo, error)) {
        if (auto applied = storage::migrate(*conn)) {
          report = "ok " + joined(*applied);
          status = 0;
        } else {
          report = "error " + protocol::describe(applied.error()) + " "
                   + caf::to_string(applied.error().context());
        }
      } else {
        report = "error connect: " + error;
      }
      [[maybe_unused]] auto n = ::write(fds[1], report.data(), report.size());
      ::_exit(status); // no destructors, no atexit handlers of the test runner
    }
    ::close(fds[1]);
    return {pid, fds[0]};
  }

  // Waits (at most `timeout`) for the exit; returns the report and sets `exit_code` (-1 if
  // killed or timed out).
  std::string finish(int& exit_code, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    pid_t rc = 0;
    while ((rc = ::waitpid(pid, &status, WNOHANG)) == 0
           && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    if (rc != pid) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      exit_code = -1;
    } else {
      exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string report;
    char buf[512];
    ssize_t n = 0;
    while ((n = ::read(out, buf, sizeof(buf))) > 0) {
      report.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out);
    return report;
  }
};

struct fixture {
  tests::fresh_database db;
  std::unique_ptr<storage::pg_connection> owner = tests::connect(db.owner_conninfo());

  void migrate_or_fail() {
    auto applied = storage::migrate(*owner);
    if (!applied) {
      CAF_FAIL("migrate failed: " << caf::to_string(applied.error().context()));
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(migrations_tests, fixture)

CAF_TEST(the embedded migrations are numbered in order) {
  const auto& all = storage::migrations();
  CAF_REQUIRE(!all.empty());
  CAF_CHECK_EQUAL(all.front().version, 1);
  CAF_CHECK_EQUAL(all.front().name, "0001_platform.sql");
  for (std::size_t i = 1; i < all.size(); ++i) {
    CAF_CHECK_LESS(all[i - 1].version, all[i].version);
  }
  for (const auto& m : all) {
    CAF_CHECK(!m.sql.empty());
  }
}

CAF_TEST(current_version is 0 on an empty database) {
  // migrations.hpp: "The version of the newest migration applied, 0 if none."
  auto version = storage::current_version(*owner);
  CAF_CHECK(version);
  if (version) {
    CAF_CHECK_EQUAL(*version, 0);
  } else {
    CAF_MESSAGE("current_version failed: " << caf::to_string(version.error().context()));
  }
}

CAF_TEST(migrate on an empty database applies every version in order) {
  auto applied = storage::migrate(*owner);
  CAF_REQUIRE(applied);

  CAF_CHECK_EQUAL(joined(*applied), joined(all_versions()));
  std::vector<std::string> expected;
  for (const auto& m : storage::migrations()) {
    expected.push_back(std::to_string(m.version) + " " + m.name);
  }
  CAF_CHECK_EQUAL(column(*owner, "SELECT version || ' ' || name FROM schema_migrations"
                                 " ORDER BY applied_at, version"),
                  expected);
  auto version = storage::current_version(*owner);
  CAF_REQUIRE(version);
  CAF_CHECK_EQUAL(*version, storage::migrations().back().version);
  // The session-level lock is released again.
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

CAF_TEST(a second migrate applies nothing) {
  migrate_or_fail();
  const auto before = column(*owner, "SELECT version || ' ' || applied_at FROM schema_migrations"
                                     " ORDER BY version");

  auto again = storage::migrate(*owner);

  CAF_REQUIRE(again);
  CAF_CHECK(again->empty());
  CAF_CHECK_EQUAL(column(*owner, "SELECT version || ' ' || applied_at FROM schema_migrations"
                                 " ORDER BY version"),
                  before);
  auto version = storage::current_version(*owner);
  CAF_REQUIRE(version);
  CAF_CHECK_EQUAL(*version, storage::migrations().back().version);
}

CAF_TEST(two processes migrating at once apply each version exactly once) {
  // Hold the migration lock so that both children are certainly inside migrate() at the same
  // time, waiting for it; then let them race.
  auto holder = tests::connect(db.owner_conninfo());
  CAF_REQUIRE_EQUAL(query(*holder, std::string{"SELECT pg_advisory_lock("} + migration_lock + ")"),
                    "");
  auto first = migrating_child::start(db.owner_conninfo());
  auto second = migrating_child::start(db.owner_conninfo());

  std::string waiting;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (std::chrono::steady_clock::now() < deadline) {
    waiting = query(*owner, "SELECT count(*) FROM pg_locks l JOIN pg_database d"
                            " ON d.oid = l.database WHERE l.locktype = 'advisory'"
                            " AND NOT l.granted AND d.datname = current_database()");
    if (waiting == "2") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  CAF_CHECK_EQUAL(waiting, "2");
  CAF_CHECK_EQUAL(query(*holder, std::string{"SELECT pg_advisory_unlock("} + migration_lock + ")"),
                  "t");

  int first_exit = -2;
  int second_exit = -2;
  const auto first_report = first.finish(first_exit, std::chrono::seconds{20});
  const auto second_report = second.finish(second_exit, std::chrono::seconds{20});

  CAF_CHECK_EQUAL(first_exit, 0);
  CAF_CHECK_EQUAL(second_exit, 0);
  CAF_MESSAGE("first child: " << first_report << "; second child: " << second_report);
  // One applied everything, the other found nothing left to do.
  const auto everything = "ok " + joined(all_versions());
  CAF_CHECK((first_report == everything && second_report == "ok ")
            || (first_report == "ok " && second_report == everything));
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM schema_migrations"),
                  std::to_string(storage::migrations().size()));
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(DISTINCT version) FROM schema_migrations"),
                  std::to_string(storage::migrations().size()));
  auto version = storage::current_version(*owner);
  CAF_REQUIRE(version);
  CAF_CHECK_EQUAL(*version, storage::migrations().back().version);
}

CAF_TEST(the tables belong to the migrating role and not to troupe_app) {
  migrate_or_fail();
  const auto migrator = query(*owner, "SELECT current_user");
  CAF_REQUIRE_EQUAL(migrator, "postgres");

  const auto owners = column(*owner, "SELECT c.relname || ' ' || pg_get_userbyid(c.relowner)"
                                     " FROM pg_class c JOIN pg_namespace n"
                                     " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                                     " AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
                                     " ORDER BY c.relname");
  CAF_CHECK_EQUAL(owners, (std::vector<std::string>{"api_key_tenants postgres",
                                                    "api_keys postgres",
                                                    "audit_chains postgres",
                                                    "audit_checkpoints postgres",
                                                    "audit_data_keys postgres",
                                                    "audit_log postgres",
                                                    "dashboard_layouts postgres",
                                                    "event_types postgres",
                                                    "events postgres",
                                                    "idempotency_keys postgres",
                                                    "inbound_events postgres",
                                                    "inbound_sources postgres",
                                                    "job_effects postgres",
                                                    "job_queue postgres",
                                                    "jobs postgres",
                                                    "mfa_challenges postgres",
                                                    "platform_keys postgres",
                                                    "recovery_codes postgres",
                                                    "refresh_tokens postgres",
                                                    "roles postgres",
                                                    "schedule_firings postgres",
                                                    "schedules postgres",
                                                    "schema_migrations postgres",
                                                    "sessions postgres",
                                                    "signing_keys postgres",
                                                    "tenants postgres",
                                                    "usage_counters postgres",
                                                    "users postgres",
                                                    "webhook_attempts postgres",
                                                    "webhook_deliveries postgres",
                                                    "webhook_dispatchers postgres",
                                                    "webhook_endpoints postgres",
                                                    "webhook_queue postgres"}));
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                                " ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                                " AND pg_get_userbyid(c.relowner) = 'troupe_app'"),
                  "0");
  CAF_CHECK_EQUAL(query(*owner, "SELECT pg_get_userbyid(proowner) FROM pg_proc"
                                " WHERE proname = 'troupe_current_tenant'"),
                  migrator);
  // The server's role uses the tables but cannot change the schema or the history.
  CAF_CHECK_EQUAL(query(*owner, "SELECT has_schema_privilege('troupe_app', 'public', 'CREATE')"),
                  "f");
  CAF_CHECK_EQUAL(query(*owner, "SELECT has_table_privilege('troupe_app', 'schema_migrations',"
                                " 'INSERT')"),
                  "f");
  CAF_CHECK_EQUAL(query(*owner, "SELECT has_table_privilege('troupe_app', 'users', 'SELECT')"),
                  "t");
  // The audit log: append and read, nothing else (API.md "Audit log").
  for (const auto* privilege : {"UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}) {
    CAF_CHECK_EQUAL(query(*owner, std::string{"SELECT has_table_privilege('troupe_app', "
                                              "'audit_log', '"}
                                    + privilege + "')"),
                    "f");
  }
  for (const auto* privilege : {"SELECT", "INSERT"}) {
    CAF_CHECK_EQUAL(query(*owner, std::string{"SELECT has_table_privilege('troupe_app', "
                                              "'audit_log', '"}
                                    + privilege + "')"),
                    "t");
  }
  CAF_CHECK_EQUAL(query(*owner, "SELECT has_table_privilege('troupe_app', 'audit_checkpoints', "
                                "'INSERT')"),
                  "f");
}

CAF_TEST(troupe_app cannot bypass row level security which users forces) {
  migrate_or_fail();

  CAF_CHECK_EQUAL(query(*owner, "SELECT rolsuper::text || rolbypassrls::text || rolcanlogin::text"
                                " || rolcreaterole::text || rolcreatedb::text FROM pg_roles"
                                " WHERE rolname = 'troupe_app'"),
                  "falsefalsetruefalsefalse");
  CAF_CHECK_EQUAL(query(*owner, "SELECT relrowsecurity::text || ' ' || relforcerowsecurity::text"
                                " FROM pg_class WHERE oid = 'public.users'::regclass"),
                  "true true");
  // Every tenant-owned table (one with a tenant_id column) forces row-level security.
  CAF_CHECK_EQUAL(column(*owner, "SELECT c.relname FROM pg_class c"
                                 " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                 " JOIN pg_attribute a ON a.attrelid = c.oid"
                                 " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
                                 " AND a.attname = 'tenant_id' AND NOT a.attisdropped"
                                 " AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"),
                  std::vector<std::string>{});
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM pg_policies WHERE tablename = 'users'"), "1");
  // The three policies that read across tenants: which tenant a key hash belongs to, and
  // which tenants have webhook deliveries or jobs due (tenant ids and times only).
  CAF_CHECK_EQUAL(column(*owner, "SELECT tablename || ' ' || cmd FROM pg_policies"
                                 " WHERE qual = 'true' ORDER BY tablename"),
                  (std::vector<std::string>{"api_key_tenants SELECT", "job_queue SELECT",
                                            "webhook_queue SELECT"}));
  for (const auto* queue : {"webhook_queue", "job_queue"}) {
    CAF_CHECK_EQUAL(column(*owner, std::string{"SELECT column_name::text FROM "
                                               "information_schema.columns WHERE table_name = '"}
                                     + queue + "' ORDER BY column_name"),
                    (std::vector<std::string>{"due_at", "tenant_id"}));
  }
}

CAF_TEST_FIXTURE_SCOPE_END()

// Does libpq pipeline mode pay off for Troupe's units of work? (docs/performance.md, "Storage
// (issue 3)"). One connection, one client, no CAF: measures transactions of the shape
// storage/db.cpp runs (BEGIN; set_config('troupe.tenant_id', …, true); k statements; COMMIT)
// with k single-row INSERTs into a temp table, three ways:
//
//   roundtrip   one round trip per statement, as storage/pg.cpp does today: PQexec for BEGIN
//               and COMMIT, PQexecPrepared for set_config and each INSERT (k + 3 round trips);
//   lazy-begin  BEGIN and set_config sent in one pipeline together with the first INSERT, the
//               other statements as today (k + 1 round trips);
//   pipeline    the whole transaction in one pipeline: PQsendQueryParams / PQsendQueryPrepared
//               for every statement, one PQpipelineSync, then the results (1 round trip).
//
//   troupe_bench_pg_pipeline CONNINFO [SECONDS [PLACEMENT...]]
//
// SECONDS (default 2) is how long each case runs: the three ways of one k take turns in 50 ms
// slices (after a 100 ms warm-up each), so drifting latency affects them alike. PLACEMENT
// (default: split same) pins this process and its backend: `split` on two different CPUs,
// `same` both on one, `free` not at all. On a small VM the round trip costs several times more
// when the wake-up crosses cores, so an unpinned run swings between the two. Pinning the
// backend needs the right to (root or the backend's user).
//
// One line per placement, k and way; us/stmt counts BEGIN, set_config, the k INSERTs and
// COMMIT; cpu is the CPU time of this process and the backend together, per transaction:
//   pipeline   split k=8   roundtrip     1707 tx/s   53.2 us/stmt   585.7 us/tx  11 round
//   trips/tx  53.2 us/round trip  cpu 448.8 us/tx      (one line, wrapped here)
// Exit status 1 on any database error.

#include <libpq-fe.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(PGconn* conn, const std::string& what) {
  std::fprintf(stderr, "troupe_bench_pg_pipeline: %s: %s\n", what.c_str(),
               conn != nullptr ? PQerrorMessage(conn) : "");
  std::exit(1);
}

// Checks and frees one result of a statement that must succeed.
void expect(PGresult* result, const char* what) {
  const auto status = PQresultStatus(result);
  const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  if (!ok) {
    const std::string message = result != nullptr ? PQresultErrorMessage(result) : "no result";
    PQclear(result);
    std::fprintf(stderr, "troupe_bench_pg_pipeline: %s failed: %s\n", what, message.c_str());
    std::exit(1);
  }
  PQclear(result);
}

constexpr const char* tenant_id = "0190f6c8-7d3e-7000-8000-000000000001";

struct session {
  explicit session(PGconn* c) : conn(c) {}

  PGconn* conn;
  long counter = 0;
  std::string value; // the parameter of the next INSERT
  const char* set_params[1] = {tenant_id};
  const char* insert_params[1] = {nullptr};

  const char* const* next_insert() {
    value = std::to_string(++counter);
    insert_params[0] = value.c_str();
    return insert_params;
  }
};

// -- the three ways of running one transaction ------------------------------------------------

void roundtrip_tx(session& s, int k) {
  expect(PQexec(s.conn, "BEGIN"), "BEGIN");
  expect(PQexecPrepared(s.conn, "set_tenant", 1, s.set_params, nullptr, nullptr, 0), "set_config");
  for (int i = 0; i < k; ++i) {
    expect(PQexecPrepared(s.conn, "insert_row", 1, s.next_insert(), nullptr, nullptr, 0), "INSERT");
  }
  expect(PQexec(s.conn, "COMMIT"), "COMMIT");
}

// Reads the results of `queries` pipelined statements and the sync that ends them.
void drain_pipeline(PGconn* conn, int queries) {
  for (int i = 0; i < queries; ++i) {
    PGresult* result = PQgetResult(conn);
    if (result == nullptr) {
      fail(conn, "pipeline: missing result");
    }
    expect(result, "pipelined statement");
    if (PQgetResult(conn) != nullptr) { // each query's results end with a null
      fail(conn, "pipeline: more than one result for a statement");
    }
  }
  PGresult* sync = PQgetResult(conn);
  if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC) {
    PQclear(sync);
    fail(conn, "pipeline: expected the sync");
  }
  PQclear(sync);
}

void send(PGconn* conn, int sent) {
  if (sent != 1) {
    fail(conn, "pipeline: send");
  }
}

void send_plain(session& s, const char* sql) {
  send(s.conn, PQsendQueryParams(s.conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0));
}

void send_set_tenant(session& s) {
  send(s.conn, PQsendQueryPrepared(s.conn, "set_tenant", 1, s.set_params, nullptr, nullptr, 0));
}

void send_insert(session& s) {
  send(s.conn, PQsendQueryPrepared(s.conn, "insert_row", 1, s.next_insert(), nullptr, nullptr, 0));
}

void lazy_begin_tx(session& s, int k) {
  if (PQenterPipelineMode(s.conn) != 1) {
    fail(s.conn, "PQenterPipelineMode");
  }
  send_plain(s, "BEGIN");
  send_set_tenant(s);
  send_insert(s);
  send(s.conn, PQpipelineSync(s.conn));
  drain_pipeline(s.conn, 3);
  if (PQexitPipelineMode(s.conn) != 1) {
    fail(s.conn, "PQexitPipelineMode");
  }
  for (int i = 1; i < k; ++i) {
    expect(PQexecPrepared(s.conn, "insert_row", 1, s.next_insert(), nullptr, nullptr, 0), "INSERT");
  }
  expect(PQexec(s.conn, "COMMIT"), "COMMIT");
}

// The connection stays in pipeline mode from one transaction to the next (run_for enters it
// and leaves it around a slice); entering and leaving costs nothing on the wire.
void pipeline_tx(session& s, int k) {
  send_plain(s, "BEGIN");
  send_set_tenant(s);
  for (int i = 0; i < k; ++i) {
    send_insert(s);
  }
  send_plain(s, "COMMIT");
  send(s.conn, PQpipelineSync(s.conn));
  drain_pipeline(s.conn, k + 3);
}

// -- measuring --------------------------------------------------------------------------------

struct mode {
  const char* name;
  void (*run)(session&, int);
  bool pipeline_mode;    // the connection is in pipeline mode while it runs
  int fixed_round_trips; // round trips per transaction: k * per_insert + this
  int per_insert;
};

const mode modes[] = {
  {"roundtrip", roundtrip_tx, false, 3, 1},
  {"lazy-begin", lazy_begin_tx, false, 1, 1},
  {"pipeline", pipeline_tx, true, 1, 0},
};
constexpr std::size_t mode_count = sizeof(modes) / sizeof(modes[0]);

// Runs `m` with `k` inserts for `duration`; returns the transactions completed.
long run_for(session& s, const mode& m, int k, clock_type::duration duration) {
  if (m.pipeline_mode && PQenterPipelineMode(s.conn) != 1) {
    fail(s.conn, "PQenterPipelineMode");
  }
  long done = 0;
  const auto end = clock_type::now() + duration;
  while (clock_type::now() < end) {
    m.run(s, k);
    ++done;
  }
  if (m.pipeline_mode && PQexitPipelineMode(s.conn) != 1) {
    fail(s.conn, "PQexitPipelineMode");
  }
  return done;
}

// -- where the client and the backend run ----------------------------------------------------

// CPU time of a process (0: this one) in nanoseconds from /proc/PID/schedstat, or -1.
long long cpu_ns(int pid) {
  const std::string path
    = "/proc/" + (pid == 0 ? std::string{"self"} : std::to_string(pid)) + "/schedstat";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) {
    return -1;
  }
  long long ns = -1;
  if (std::fscanf(file, "%lld", &ns) != 1) {
    ns = -1;
  }
  std::fclose(file);
  return ns;
}

// "split": this process on the first allowed CPU, the backend on the second (the usual case
// on an idle machine: a wake-up crosses cores); "same": both on the first (a wake-up is a
// context switch); "free": wherever the scheduler puts them.
bool place(const std::string& placement, int backend_pid, const cpu_set_t& allowed) {
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) {
      cpus.push_back(cpu);
    }
  }
  cpu_set_t mine = allowed;
  cpu_set_t theirs = allowed;
  if (placement == "split" || placement == "same") {
    if (cpus.size() < (placement == "split" ? 2U : 1U)) {
      return false;
    }
    CPU_ZERO(&mine);
    CPU_SET(cpus[0], &mine);
    CPU_ZERO(&theirs);
    CPU_SET(placement == "split" ? cpus[1] : cpus[0], &theirs);
  } else if (placement != "free") {
    return false;
  }
  return ::sched_setaffinity(0, sizeof(mine), &mine) == 0
         && ::sched_setaffinity(backend_pid, sizeof(theirs), &theirs) == 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: troupe_bench_pg_pipeline CONNINFO [SECONDS [split|same|free ...]]\n");
    return 2;
  }
  const double seconds = argc >= 3 ? std::atof(argv[2]) : 2.0;
  if (!(seconds > 0)) {
    std::fprintf(stderr, "troupe_bench_pg_pipeline: SECONDS must be positive\n");
    return 2;
  }
  std::vector<std::string> placements{argv + std::min(argc, 3), argv + argc};
  if (placements.empty()) {
    placements = {"split", "same"};
  }
  const std::chrono::duration<double> duration{seconds};

  PGconn* conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) {
    fail(conn, "connect");
  }
  const int backend = PQbackendPID(conn);
  // Like a tenant table: the row's tenant_id comes from the transaction's troupe.tenant_id.
  expect(PQexec(conn, "CREATE TEMP TABLE bench_pipeline (id bigserial PRIMARY KEY,"
                      " tenant_id uuid NOT NULL DEFAULT current_setting('troupe.tenant_id')::uuid,"
                      " v bigint NOT NULL)"),
         "CREATE TEMP TABLE");
  expect(
    PQprepare(conn, "set_tenant", "SELECT set_config('troupe.tenant_id', $1, true)", 1, nullptr),
    "PREPARE set_tenant");
  expect(PQprepare(conn, "insert_row", "INSERT INTO bench_pipeline (v) VALUES ($1)", 1, nullptr),
         "PREPARE insert_row");

  cpu_set_t allowed;
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    fail(nullptr, "sched_getaffinity");
  }

  // Even pinned, latency drifts: the three ways of one k take turns in slices of 50 ms, so
  // each sees the same conditions, until each has run for `duration`.
  const auto slice = std::chrono::milliseconds{50};
  const int slices = std::max(1, static_cast<int>(duration / slice));
  session s{conn};
  for (const auto& placement : placements) {
    errno = 0;
    if (!place(placement, backend, allowed)) {
      std::printf("pipeline   %-5s cannot place the client and the backend (%s)\n",
                  placement.c_str(),
                  errno != 0 ? std::strerror(errno) : "unknown placement or too few CPUs");
      continue;
    }
    for (const int k : {1, 3, 8, 32}) {
      for (const auto& m : modes) {
        run_for(s, m, k, slice * 2); // warm-up
      }
      long done[mode_count] = {};
      std::chrono::duration<double> took[mode_count] = {};
      long long cpu[mode_count] = {};
      bool cpu_known = true;
      for (int i = 0; i < slices; ++i) {
        for (std::size_t j = 0; j < mode_count; ++j) {
          const auto cpu_before = cpu_ns(0) + cpu_ns(backend);
          const auto start = clock_type::now();
          done[j] += run_for(s, modes[j], k, slice);
          took[j] += clock_type::now() - start;
          const auto cpu_after = cpu_ns(0) + cpu_ns(backend);
          cpu_known = cpu_known && cpu_before >= 0 && cpu_after >= 0;
          cpu[j] += cpu_after - cpu_before;
        }
      }
      for (std::size_t j = 0; j < mode_count; ++j) {
        const auto& m = modes[j];
        const double n = static_cast<double>(done[j]);
        const double us = took[j].count() * 1e6;
        const int round_trips = m.fixed_round_trips + k * m.per_insert;
        char cpu_text[32] = "?";
        if (cpu_known) {
          std::snprintf(cpu_text, sizeof(cpu_text), "%.1f", static_cast<double>(cpu[j]) / 1e3 / n);
        }
        // Per statement of the transaction: BEGIN, set_config, k inserts, COMMIT.
        std::printf("pipeline   %-5s k=%-3d %-10s %7.0f tx/s %6.1f us/stmt %7.1f us/tx"
                    " %3d round trips/tx %5.1f us/round trip  cpu %s us/tx\n",
                    placement.c_str(), k, m.name, n / took[j].count(), us / (n * (k + 3)), us / n,
                    round_trips, us / (n * round_trips), cpu_text);
        std::fflush(stdout);
      }
      // Keep the temp table small between cases.
      expect(PQexec(conn, "TRUNCATE bench_pipeline"), "TRUNCATE");
    }
  }
  PQfinish(conn);
  return 0;
}

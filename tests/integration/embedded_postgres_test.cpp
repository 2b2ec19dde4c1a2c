#define CAF_SUITE storage.embedded_postgres

#include "storage/embedded_postgres.hpp"

#include <caf/test/unit_test.hpp>
#include <libpq-fe.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace troupe;
namespace fs = std::filesystem;

namespace {

struct conn_deleter {
  void operator()(PGconn* conn) const {
    PQfinish(conn);
  }
};

// Runs `sql` on a fresh connection; returns the first value of the first row, or an
// "error: ..." text.
std::string query(const std::string& conninfo, const std::string& sql) {
  std::unique_ptr<PGconn, conn_deleter> conn{PQconnectdb(conninfo.c_str())};
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return "error: " + std::string{PQerrorMessage(conn.get())};
  }
  PGresult* res = PQexec(conn.get(), sql.c_str());
  std::string value;
  const auto status = PQresultStatus(res);
  if (status == PGRES_TUPLES_OK && PQntuples(res) > 0) {
    value = PQgetvalue(res, 0, 0);
  } else if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    value = "error: " + std::string{PQerrorMessage(conn.get())};
  }
  PQclear(res);
  return value;
}

std::string read_text(const fs::path& path) {
  std::ifstream in{path};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool contains(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& line : lines) {
    if (line.find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// A pid that is certainly not running: a child we started and reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) {
    ::_exit(0);
  }
  ::waitpid(child, nullptr, 0);
  return child;
}

void write_lock(const fs::path& path, pid_t pid) {
  std::ofstream out{path};
  out << pid << "\n/some/data\n1700000000\n5432\n/some\n\n  5432001      1\nready   \n";
}

struct fixture {
  fs::path tmp;
  fs::path dir;
  storage::embedded_options options;

  fixture() {
    char name[] = "/tmp/troupe-embedded-XXXXXX";
    if (::mkdtemp(name) == nullptr) {
      CAF_FAIL("mkdtemp failed: " << std::strerror(errno));
    }
    tmp = name;
    ::chmod(name, 0755); // the postgres user must traverse it
    dir = tmp / "pg";
    options.dir = dir.string();
  }

  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  ~fixture() {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }

  std::unique_ptr<storage::embedded_postgres> start() {
    std::string error;
    auto pg = storage::embedded_postgres::start(options, error);
    if (pg == nullptr) {
      CAF_FAIL("start failed: " << error);
    }
    return pg;
  }

  // Starts and stops once so that the data directory exists.
  void initialise() {
    auto pg = start();
    pg->stop();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(embedded_postgres_tests, fixture)

CAF_TEST(a first start initialises the directory and serves database troupe) {
  auto pg = start();

  CAF_CHECK(pg->initialised_now());
  CAF_CHECK_EQUAL(pg->dir(), dir.string());
  CAF_CHECK_GREATER(pg->pid(), 0);
  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT 1"), "1");
  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT current_database()"), "troupe");
  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT current_user"), "postgres");
  CAF_CHECK_EQUAL(query(pg->conninfo(), "SHOW listen_addresses"), "");
  CAF_CHECK(fs::exists(dir / "data" / "PG_VERSION"));
  CAF_CHECK(fs::exists(dir / "postgres.log"));
  struct stat st {};
  CAF_REQUIRE_EQUAL(::stat((dir / ".s.PGSQL.5432").c_str(), &st), 0);
  CAF_CHECK(S_ISSOCK(st.st_mode));
  CAF_CHECK_EQUAL(st.st_mode & 0777, 0700u);
  CAF_REQUIRE_EQUAL(::stat(dir.c_str(), &st), 0);
  CAF_CHECK_EQUAL(st.st_mode & 0777, 0700u);
  if (::geteuid() == 0) {
    CAF_CHECK_NOT_EQUAL(st.st_uid, 0u); // handed to the postgres user
  }
  const auto notes = pg->notes();
  CAF_CHECK(contains(notes, "initialised"));
  CAF_CHECK(contains(notes, "created database troupe"));
  CAF_CHECK(pg->notes().empty());
}

CAF_TEST(a relative dir is made absolute) {
  const auto cwd = fs::current_path();
  fs::current_path(tmp);
  options.dir = "./relative/pg/";
  std::string error;
  auto pg = storage::embedded_postgres::start(options, error);
  fs::current_path(cwd);
  if (pg == nullptr) {
    CAF_FAIL("start failed: " << error);
  }

  CAF_CHECK_EQUAL(pg->dir(), (tmp / "relative" / "pg").string());
  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT 1"), "1");
}

CAF_TEST(stopping and starting again reuses the data) {
  {
    auto pg = start();
    CAF_REQUIRE_EQUAL(query(pg->conninfo(), "CREATE TABLE kept (v text)"), "");
    CAF_REQUIRE_EQUAL(query(pg->conninfo(), "INSERT INTO kept VALUES ('run 1')"), "");
  }

  auto pg = start();

  CAF_CHECK(!pg->initialised_now());
  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT v FROM kept"), "run 1");
  CAF_CHECK(!contains(pg->notes(), "stale"));
}

CAF_TEST(stop is idempotent and reports the exit status) {
  auto pg = start();
  const auto postmaster = pg->pid();
  pg->notes();

  pg->stop();
  pg->stop();

  CAF_CHECK_EQUAL(pg->pid(), -1);
  const auto notes = pg->notes();
  CAF_REQUIRE_EQUAL(notes.size(), 1u);
  CAF_CHECK_EQUAL(notes[0],
                  "PostgreSQL pid=" + std::to_string(postmaster) + " stopped (exit status 0)");
  CAF_CHECK_EQUAL(::kill(postmaster, 0), -1);
  CAF_CHECK(!fs::exists(dir / "data" / "postmaster.pid"));
  CAF_CHECK(read_text(dir / "postgres.log").find("received fast shutdown request")
            != std::string::npos);
}

CAF_TEST(a stale postmaster pid of a dead process is removed before starting) {
  initialise();
  const pid_t gone = dead_pid();
  write_lock(dir / "data" / "postmaster.pid", gone);
  write_lock(dir / ".s.PGSQL.5432.lock", gone);

  auto pg = start();

  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT 1"), "1");
  CAF_CHECK(contains(pg->notes(), "removed stale postmaster.pid (pid " + std::to_string(gone)
                                    + " not running)"));
}

CAF_TEST(a postmaster pid of a live process that is not postgres is treated as stale) {
  initialise();
  write_lock(dir / "data" / "postmaster.pid", ::getpid());

  auto pg = start();

  CAF_CHECK_EQUAL(query(pg->conninfo(), "SELECT 1"), "1");
  CAF_CHECK(contains(pg->notes(), "is not a PostgreSQL on this directory"));
}

CAF_TEST(a second start on a running directory fails as already running) {
  auto first = start();
  std::string error;

  auto second = storage::embedded_postgres::start(options, error);

  CAF_CHECK(second == nullptr);
  CAF_CHECK_EQUAL(error, "an embedded PostgreSQL is already running on " + dir.string() + " (pid "
                           + std::to_string(first->pid()) + ")");
  CAF_CHECK_EQUAL(query(first->conninfo(), "SELECT 1"), "1");
}

CAF_TEST(postgres stops when the process that started it dies without stopping it) {
  initialise();
  // Orphans re-parent to us, so the dead parent's postgres can be reaped and not linger as a
  // zombie that kill(pid, 0) still finds.
  CAF_REQUIRE_EQUAL(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pipe_fds[2];
  CAF_REQUIRE_EQUAL(::pipe(pipe_fds), 0);
  const pid_t parent = ::fork();
  if (parent == 0) {
    ::close(pipe_fds[0]);
    std::string error;
    auto pg = storage::embedded_postgres::start(options, error);
    std::ifstream lock{dir / "data" / "postmaster.pid"};
    pid_t postmaster = -1;
    if (pg == nullptr || !(lock >> postmaster) || postmaster != pg->pid()) {
      postmaster = -1;
    }
    [[maybe_unused]] auto written = ::write(pipe_fds[1], &postmaster, sizeof(postmaster));
    ::_exit(0); // runs no destructor, so nothing calls stop()
  }
  CAF_REQUIRE_GREATER(parent, 0);
  ::close(pipe_fds[1]);
  pid_t postmaster = -1;
  const auto got = ::read(pipe_fds[0], &postmaster, sizeof(postmaster));
  ::close(pipe_fds[0]);
  ::waitpid(parent, nullptr, 0);
  CAF_REQUIRE_EQUAL(got, static_cast<ssize_t>(sizeof(postmaster)));
  CAF_REQUIRE_GREATER(postmaster, 0);

  bool gone = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (!gone && std::chrono::steady_clock::now() < deadline) {
    gone = ::waitpid(postmaster, &status, WNOHANG) == postmaster
           || (::kill(postmaster, 0) != 0 && errno == ESRCH);
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  if (!gone) {
    ::kill(postmaster, SIGKILL);
    ::waitpid(postmaster, nullptr, 0);
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);

  CAF_CHECK(gone);
  CAF_CHECK(!fs::exists(dir / "data" / "postmaster.pid"));
  CAF_CHECK(read_text(dir / "postgres.log").find("received fast shutdown request")
            != std::string::npos);
}

CAF_TEST(an unusable bin dir gives a clear error) {
  options.bin_dir = (tmp / "no-such-bin").string();
  std::string error;

  auto pg = storage::embedded_postgres::start(options, error);

  CAF_CHECK(pg == nullptr);
  CAF_CHECK_EQUAL(error, "no usable PostgreSQL in " + options.bin_dir + ": " + options.bin_dir
                           + "/initdb No such file or directory (install postgresql-15 or set"
                             " database.url)");
}

CAF_TEST(a socket path that is too long gives a clear error) {
  options.dir = (tmp / std::string(100, 'x')).string();
  std::string error;

  auto pg = storage::embedded_postgres::start(options, error);

  CAF_CHECK(pg == nullptr);
  CAF_CHECK(error.find("socket path " + options.dir + "/.s.PGSQL.5432 is") != std::string::npos);
  CAF_CHECK(error.find("more than the 107") != std::string::npos);
  CAF_CHECK(!fs::exists(options.dir));
}

CAF_TEST(a parent the postgres user cannot enter is named in the error) {
  if (::geteuid() != 0) {
    CAF_MESSAGE("not root: the server runs as the current user, nothing to check");
    return;
  }
  const auto locked = tmp / "locked";
  fs::create_directory(locked);
  ::chmod(locked.c_str(), 0700);
  options.dir = (locked / "pg").string();
  std::string error;

  auto pg = storage::embedded_postgres::start(options, error);

  CAF_CHECK(pg == nullptr);
  CAF_CHECK(error.find("cannot enter " + locked.string() + " (mode 0700, owner uid 0)")
            != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()

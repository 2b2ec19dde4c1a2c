#include "storage/embedded_postgres.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace troupe::storage {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr const char* port = "5432";
constexpr const char* socket_name = ".s.PGSQL.5432";
constexpr const char* database = "troupe";
constexpr const char* superuser = "postgres";
constexpr std::size_t max_socket_path = sizeof(sockaddr_un::sun_path) - 1; // 107 on Linux
constexpr auto poll_interval = 50ms;
constexpr auto fast_shutdown_timeout = 30s;
constexpr auto quit_timeout = 5s;
constexpr std::size_t tail_lines = 5;
constexpr std::size_t tail_chars = 600;

std::string errno_text(int err) {
  return std::strerror(err);
}

// The OS account the server runs as: `postgres` when we are root, else ourselves.
struct account {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups; // supplementary groups, what initgroups() would set
  bool switch_user = false;
};

bool lookup_account(account& out, std::string& error) {
  if (::geteuid() != 0) {
    out.uid = ::geteuid();
    out.gid = ::getegid();
    out.switch_user = false;
    return true;
  }
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  const int rc = ::getpwnam_r(superuser, &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    error = std::string{"PostgreSQL refuses to run as root and the OS user \""} + superuser
            + "\" does not exist" + (rc != 0 ? " (" + errno_text(rc) + ")" : std::string{})
            + "; install postgresql-15 or set database.url";
    return false;
  }
  if (found->pw_uid == 0) {
    error = std::string{"the OS user \""} + superuser + "\" has uid 0; PostgreSQL refuses to run"
            + " as root";
    return false;
  }
  out.name = found->pw_name;
  out.uid = found->pw_uid;
  out.gid = found->pw_gid;
  out.switch_user = true;
  // initgroups() is not async-signal-safe, so the child gets this list via setgroups().
  int count = 32;
  out.groups.resize(static_cast<std::size_t>(count));
  while (::getgrouplist(out.name.c_str(), out.gid, out.groups.data(), &count) < 0) {
    out.groups.resize(static_cast<std::size_t>(count) * 2);
    count = static_cast<int>(out.groups.size());
  }
  out.groups.resize(static_cast<std::size_t>(count));
  return true;
}

// Whether `user` may search (traverse) a directory with status `st`, by its mode bits.
bool can_traverse(const struct stat& st, const account& user) {
  if (user.uid == 0) {
    return true;
  }
  if (st.st_uid == user.uid) {
    return (st.st_mode & S_IXUSR) != 0;
  }
  const bool in_group
    = st.st_gid == user.gid
      || std::find(user.groups.begin(), user.groups.end(), st.st_gid) != user.groups.end();
  if (in_group) {
    return (st.st_mode & S_IXGRP) != 0;
  }
  return (st.st_mode & S_IXOTH) != 0;
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// mkdir -p: missing parents get 0755 (the server's user must traverse them), `dir` 0700.
bool make_directories(const fs::path& dir, std::string& error) {
  fs::path partial;
  for (const auto& part : dir) {
    partial /= part;
    struct stat st {};
    if (::stat(partial.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        error = partial.string() + " is not a directory";
        return false;
      }
      continue;
    }
    const bool last = partial == dir;
    if (::mkdir(partial.c_str(), last ? 0700 : 0755) == 0) {
      ::chmod(partial.c_str(), last ? 0700 : 0755); // mkdir() applied the umask
    } else if (errno != EEXIST) {
      error = "cannot create " + partial.string() + ": " + errno_text(errno);
      return false;
    }
  }
  return true;
}

// Checks that `user` can reach `dir` through every parent, naming the first that blocks it.
bool check_parents(const fs::path& dir, const account& user, std::string& error) {
  fs::path partial;
  for (auto it = dir.begin(); it != dir.end(); ++it) {
    partial /= *it;
    if (partial == dir) {
      break;
    }
    struct stat st {};
    if (::stat(partial.c_str(), &st) != 0) {
      error = "cannot inspect " + partial.string() + ": " + errno_text(errno);
      return false;
    }
    if (!can_traverse(st, user)) {
      error = "the OS user \"" + user.name + "\" that runs the embedded PostgreSQL cannot enter "
              + partial.string() + " (mode " + octal_mode(st.st_mode) + ", owner uid "
              + std::to_string(st.st_uid) + "); choose a database.embedded-dir outside it or"
              + " allow others to traverse it (chmod o+x)";
      return false;
    }
  }
  return true;
}

bool change_owner(const fs::path& path, const account& user, std::string& error) {
  if (::lchown(path.c_str(), user.uid, user.gid) != 0) {
    error = "cannot hand " + path.string() + " to the OS user \"" + user.name
            + "\": " + errno_text(errno);
    return false;
  }
  return true;
}

bool change_owner_recursively(const fs::path& dir, const account& user, std::string& error) {
  if (!change_owner(dir, user, error)) {
    return false;
  }
  std::error_code ec;
  for (fs::recursive_directory_iterator it{dir, ec}, end; !ec && it != end; it.increment(ec)) {
    if (!change_owner(it->path(), user, error)) {
      return false;
    }
  }
  if (ec) {
    error = "cannot walk " + dir.string() + ": " + ec.message();
    return false;
  }
  return true;
}

// The last lines of `path` written at or after byte `from`, joined on one line.
std::string log_tail(const fs::path& path, std::streamoff from) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    return "(no output in " + path.string() + ")";
  }
  in.seekg(from);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.find_first_not_of(" \t") != std::string::npos) {
      lines.push_back(std::move(line));
    }
  }
  if (lines.empty()) {
    return "(no output in " + path.string() + ")";
  }
  const auto first = lines.size() > tail_lines ? lines.size() - tail_lines : 0;
  std::string text;
  for (auto i = first; i < lines.size(); ++i) {
    text += (i == first ? "" : " | ") + lines[i];
  }
  if (text.size() > tail_chars) {
    text = "..." + text.substr(text.size() - tail_chars);
  }
  return text;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(status));
    return std::string{"killed by SIG"} + (name != nullptr ? name : "?") + " ("
           + std::to_string(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

// A single-quoted libpq conninfo value.
std::string quoted(const std::string& value) {
  std::string text = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') {
      text += '\\';
    }
    text += c;
  }
  return text + "'";
}

std::string make_conninfo(const std::string& dir, const std::string& db, const std::string& user) {
  return "host=" + quoted(dir) + " port=" + port + " dbname=" + quoted(db)
         + " user=" + quoted(user);
}

// The child's side of spawn(): only async-signal-safe calls between fork() and exec().
[[noreturn]] void child_fail(int log_fd, const char* what) {
  const int err = errno;
  const char* prefix = "troupe: embedded PostgreSQL child: ";
  [[maybe_unused]] auto rc = ::write(log_fd, prefix, std::strlen(prefix));
  rc = ::write(log_fd, what, std::strlen(what));
  char number[16];
  int n = 0;
  for (int value = err; n == 0 || value > 0; value /= 10) {
    number[n++] = static_cast<char>('0' + value % 10);
  }
  rc = ::write(log_fd, " failed, errno ", 15);
  while (n > 0) {
    rc = ::write(log_fd, &number[--n], 1);
  }
  rc = ::write(log_fd, "\n", 1);
  ::_exit(127);
}

struct child_spec {
  std::vector<std::string> argv;
  std::string cwd;
  int log_fd = -1;
  int null_fd = -1;
  const account* user = nullptr;
  int death_signal = 0;
};

// Forks and execs `spec.argv` detached from our session, signals and (as root) user.
pid_t spawn(const child_spec& spec, std::string& error) {
  std::vector<char*> argv;
  for (const auto& arg : spec.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child < 0) {
    error = "cannot fork: " + errno_text(errno);
    return -1;
  }
  if (child > 0) {
    return child;
  }
  // A terminal's Ctrl-C must reach only Troupe, which stops PostgreSQL after itself.
  if (::setsid() < 0) {
    child_fail(spec.log_fd, "setsid");
  }
  // Troupe blocks SIGINT/SIGTERM/SIGUSR1 for sigwait and ignores SIGPIPE; both survive exec.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::sigaction(sig, &default_action, nullptr); // EINVAL for glibc's reserved ones is fine
    }
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) {
    child_fail(spec.log_fd, "sigprocmask");
  }
  if (spec.user != nullptr && spec.user->switch_user) {
    if (::setgid(spec.user->gid) != 0) {
      child_fail(spec.log_fd, "setgid");
    }
    if (::setgroups(spec.user->groups.size(), spec.user->groups.data()) != 0) {
      child_fail(spec.log_fd, "setgroups");
    }
    if (::setuid(spec.user->uid) != 0) {
      child_fail(spec.log_fd, "setuid");
    }
  }
  // After the credential change, which would clear it.
  if (spec.death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, spec.death_signal) != 0) {
      child_fail(spec.log_fd, "prctl(PR_SET_PDEATHSIG)");
    }
    if (::getppid() != parent) {
      ::_exit(126); // the parent died before the death signal was armed
    }
  }
  if (::dup2(spec.null_fd, STDIN_FILENO) < 0 || ::dup2(spec.log_fd, STDOUT_FILENO) < 0
      || ::dup2(spec.log_fd, STDERR_FILENO) < 0) {
    child_fail(spec.log_fd, "dup2");
  }
  // Sockets or files Troupe opened without O_CLOEXEC must not outlive it in PostgreSQL.
  if (::close_range(3, ~0U, 0) != 0) {
    rlimit limit{};
    const auto highest = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                           ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536))
                           : 4096;
    for (int fd = 3; fd < highest; ++fd) {
      ::close(fd);
    }
  }
  if (::chdir(spec.cwd.c_str()) != 0) {
    child_fail(STDERR_FILENO, "chdir");
  }
  ::execv(argv[0], argv.data());
  child_fail(STDERR_FILENO, argv[0]);
}

// Waits up to `timeout` for `pid` to exit. Returns true and sets `status` if it did; sets
// `lost` when the child cannot be waited for (already reaped elsewhere).
bool wait_exit(pid_t pid, steady::duration timeout, int& status, bool& lost) {
  const auto deadline = steady::now() + timeout;
  lost = false;
  for (;;) {
    const pid_t rc = ::waitpid(pid, &status, WNOHANG);
    if (rc == pid) {
      return true;
    }
    if (rc < 0 && errno != EINTR) {
      lost = true;
      return true;
    }
    if (steady::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

bool read_file(const fs::path& path, std::string& text) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  text = buffer.str();
  return true;
}

// The PID on the first line of a PostgreSQL lock file, or 0.
pid_t lock_pid(const fs::path& path) {
  std::ifstream in{path};
  long value = 0;
  if (!(in >> value) || value <= 0 || value > 0x3fffffff) {
    return 0;
  }
  return static_cast<pid_t>(value);
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

// Whether `pid` is a PostgreSQL process serving `data_dir`.
bool serves(pid_t pid, const fs::path& data_dir) {
  const auto proc = fs::path{"/proc"} / std::to_string(pid);
  std::string cmdline;
  read_file(proc / "cmdline", cmdline);
  std::vector<std::string> args;
  for (std::size_t start = 0; start < cmdline.size();) {
    const auto end = std::min(cmdline.find('\0', start), cmdline.size());
    args.push_back(cmdline.substr(start, end - start));
    start = end + 1;
  }
  std::error_code ec;
  const auto exe = fs::read_symlink(proc / "exe", ec).filename().string();
  const auto program = args.empty() ? std::string{} : fs::path{args[0]}.filename().string();
  const auto is_postgres = [](const std::string& name) {
    return name == "postgres" || name == "postmaster" || name.rfind("postgres:", 0) == 0;
  };
  if (!is_postgres(exe) && !is_postgres(program)) {
    return false;
  }
  const auto ours = data_dir.string();
  for (const auto& arg : args) {
    if (arg == ours || arg == "-D" + ours || arg == "--pgdata=" + ours) {
      return true;
    }
  }
  const auto real = fs::canonical(data_dir, ec);
  const auto cwd = fs::read_symlink(proc / "cwd", ec);
  return !ec && !real.empty() && cwd == real;
}

// Refuses a directory a live server uses; removes the lock files a dead one left behind.
bool clear_stale_lock(const fs::path& dir, const fs::path& data_dir,
                      std::vector<std::string>& notes, std::string& error) {
  const fs::path pid_file = data_dir / "postmaster.pid";
  const fs::path socket = dir / socket_name;
  const fs::path socket_lock = dir / (std::string{socket_name} + ".lock");
  std::error_code ec;
  bool stale = false;
  std::string why;
  for (const auto& lock : {pid_file, socket_lock}) {
    if (!fs::exists(lock, ec)) {
      continue;
    }
    stale = true;
    const pid_t pid = lock_pid(lock);
    if (pid > 0 && alive(pid) && serves(pid, data_dir)) {
      error = "an embedded PostgreSQL is already running on " + dir.string() + " (pid "
              + std::to_string(pid) + ")";
      return false;
    }
    if (why.empty()) {
      why = lock.filename().string();
      why += pid <= 0 ? " (no pid in it)"
             : !alive(pid)
               ? " (pid " + std::to_string(pid) + " not running)"
               : " (pid " + std::to_string(pid) + " is not a PostgreSQL on this directory)";
    }
  }
  if (!stale) {
    return true;
  }
  for (const auto& file : {pid_file, socket, socket_lock}) {
    if (!fs::remove(file, ec) && ec) {
      error = "cannot remove stale " + file.string() + ": " + ec.message();
      return false;
    }
  }
  notes.push_back("removed stale " + why + " and the socket files in " + dir.string());
  return true;
}

struct pg_conn_deleter {
  void operator()(PGconn* conn) const {
    PQfinish(conn);
  }
};
struct pg_result_deleter {
  void operator()(PGresult* result) const {
    PQclear(result);
  }
};
using connection = std::unique_ptr<PGconn, pg_conn_deleter>;
using result = std::unique_ptr<PGresult, pg_result_deleter>;

std::string one_line(const char* message) {
  std::string text = message != nullptr ? message : "";
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

bool ensure_database(const std::string& dir, std::vector<std::string>& notes, std::string& error) {
  connection conn{PQconnectdb(make_conninfo(dir, "postgres", superuser).c_str())};
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    error = "cannot connect to the embedded PostgreSQL: "
            + one_line(conn != nullptr ? PQerrorMessage(conn.get()) : "out of memory");
    return false;
  }
  const std::string exists
    = std::string{"SELECT 1 FROM pg_database WHERE datname = '"} + database + "'";
  result found{PQexec(conn.get(), exists.c_str())};
  if (PQresultStatus(found.get()) != PGRES_TUPLES_OK) {
    error = "cannot list databases: " + one_line(PQerrorMessage(conn.get()));
    return false;
  }
  if (PQntuples(found.get()) > 0) {
    return true;
  }
  result created{PQexec(conn.get(), (std::string{"CREATE DATABASE "} + database).c_str())};
  if (PQresultStatus(created.get()) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(created.get(), PG_DIAG_SQLSTATE);
    if (state != nullptr && std::strcmp(state, "42P04") == 0) {
      return true; // duplicate_database: someone else made it meanwhile
    }
    error = std::string{"cannot create database "} + database + ": "
            + one_line(PQerrorMessage(conn.get()));
    return false;
  }
  notes.push_back(std::string{"created database "} + database);
  return true;
}

// A descriptor closed on scope exit.
struct descriptor {
  int fd = -1;
  descriptor() = default;
  explicit descriptor(int value) : fd(value) {}
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
  ~descriptor() {
    if (fd >= 0) {
      ::close(fd);
    }
  }
};

} // namespace

std::unique_ptr<embedded_postgres> embedded_postgres::start(const embedded_options& options,
                                                            std::string& error) {
  error.clear();
  if (options.dir.empty()) {
    error = "database.embedded-dir is empty";
    return nullptr;
  }
  std::error_code ec;
  fs::path dir = fs::absolute(options.dir, ec).lexically_normal();
  if (ec) {
    error = "cannot resolve database.embedded-dir " + options.dir + ": " + ec.message();
    return nullptr;
  }
  if (!dir.has_filename() && dir != dir.root_path()) {
    dir = dir.parent_path(); // drop the trailing separator of "a/b/"
  }
  const fs::path socket = dir / socket_name;
  if (socket.string().size() > max_socket_path) {
    error = "the embedded PostgreSQL socket path " + socket.string() + " is "
            + std::to_string(socket.string().size()) + " bytes, more than the "
            + std::to_string(max_socket_path) + " a unix socket allows; choose a shorter"
            + " database.embedded-dir";
    return nullptr;
  }
  const fs::path bin_dir = options.bin_dir;
  for (const char* program : {"initdb", "postgres"}) {
    const auto path = bin_dir / program;
    if (::access(path.c_str(), X_OK) != 0) {
      error = "no usable PostgreSQL in " + bin_dir.string() + ": " + path.string() + " "
              + errno_text(errno) + " (install postgresql-15 or set database.url)";
      return nullptr;
    }
  }

  account user;
  if (!lookup_account(user, error)) {
    return nullptr;
  }
  if (!make_directories(dir, error)) {
    return nullptr;
  }
  const fs::path data_dir = dir / "data";
  const bool initialised = fs::exists(data_dir / "PG_VERSION", ec);
  if (user.switch_user) {
    if (!check_parents(dir, user, error)) {
      return nullptr;
    }
    const bool handed
      = initialised ? change_owner(dir, user, error) : change_owner_recursively(dir, user, error);
    if (!handed) {
      return nullptr;
    }
  }
  if (initialised) {
    struct stat st {};
    if (::stat(data_dir.c_str(), &st) == 0 && st.st_uid != user.uid) {
      error = data_dir.string() + " belongs to uid " + std::to_string(st.st_uid)
              + ", not to the uid " + std::to_string(user.uid)
              + " that runs the embedded PostgreSQL; chown -R it";
      return nullptr;
    }
  }

  const fs::path log_path = dir / "postgres.log";
  descriptor log{::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)};
  if (log.fd < 0) {
    error = "cannot open " + log_path.string() + ": " + errno_text(errno);
    return nullptr;
  }
  if (user.switch_user && ::fchown(log.fd, user.uid, user.gid) != 0) {
    error = "cannot hand " + log_path.string() + " to the OS user \"" + user.name
            + "\": " + errno_text(errno);
    return nullptr;
  }
  descriptor null{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  if (null.fd < 0) {
    error = "cannot open /dev/null: " + errno_text(errno);
    return nullptr;
  }

  std::unique_ptr<embedded_postgres> self{new embedded_postgres()};
  self->dir_ = dir.string();

  child_spec spec;
  spec.cwd = dir.string();
  spec.log_fd = log.fd;
  spec.null_fd = null.fd;
  spec.user = &user;

  if (!initialised) {
    const auto from = static_cast<std::streamoff>(::lseek(log.fd, 0, SEEK_END));
    spec.argv = {(bin_dir / "initdb").string(),
                 "-D",
                 data_dir.string(),
                 "-A",
                 "trust",
                 "--auth-host=reject", // no TCP listener anyway; never trust one
                 "-E",
                 "UTF8",
                 "--locale=C",
                 "-U",
                 superuser,
                 "--no-instructions"};
    spec.death_signal = SIGTERM;
    const pid_t initdb = spawn(spec, error);
    if (initdb < 0) {
      return nullptr;
    }
    int status = 0;
    while (::waitpid(initdb, &status, 0) < 0) {
      if (errno != EINTR) {
        error = "cannot wait for initdb: " + errno_text(errno);
        return nullptr;
      }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      error = "initdb failed (" + describe_status(status) + "): " + log_tail(log_path, from);
      return nullptr;
    }
    self->initialised_now_ = true;
    self->notes_.push_back("initialised a new PostgreSQL data directory in " + data_dir.string());
  }

  if (!clear_stale_lock(dir, data_dir, self->notes_, error)) {
    return nullptr;
  }

  const auto from = static_cast<std::streamoff>(::lseek(log.fd, 0, SEEK_END));
  spec.argv = {(bin_dir / "postgres").string(),
               "-D",
               data_dir.string(),
               "-k",
               dir.string(),
               "-c",
               "listen_addresses=",
               "-c",
               std::string{"port="} + port,
               "-c",
               "unix_socket_permissions=0700"};
  spec.death_signal = SIGINT; // a fast shutdown when Troupe dies, even by SIGKILL
  const pid_t child = spawn(spec, error);
  if (child < 0) {
    return nullptr;
  }
  self->pid_ = child;

  const std::string ping = make_conninfo(dir.string(), "postgres", superuser);
  const auto deadline = steady::now() + options.start_timeout;
  for (;;) {
    int status = 0;
    const pid_t rc = ::waitpid(child, &status, WNOHANG);
    if (rc == child || (rc < 0 && errno != EINTR)) {
      self->pid_ = -1;
      error = "PostgreSQL exited while starting ("
              + (rc == child ? describe_status(status) : "lost: " + errno_text(errno))
              + "): " + log_tail(log_path, from);
      return nullptr;
    }
    const PGPing state = PQping(ping.c_str());
    if (state == PQPING_OK) {
      break;
    }
    if (state == PQPING_NO_ATTEMPT) {
      error = "cannot reach the embedded PostgreSQL: invalid connection parameters " + ping;
      return nullptr; // the destructor stops the child
    }
    if (steady::now() >= deadline) {
      error = "PostgreSQL did not accept connections within "
              + std::to_string(options.start_timeout.count()) + " ms: " + log_tail(log_path, from);
      return nullptr;
    }
    std::this_thread::sleep_for(poll_interval);
  }
  self->notes_.push_back("started PostgreSQL pid=" + std::to_string(child)
                         + " dir=" + dir.string());

  if (!ensure_database(dir.string(), self->notes_, error)) {
    return nullptr;
  }
  return self;
}

embedded_postgres::~embedded_postgres() {
  stop();
}

std::string embedded_postgres::conninfo(const std::string& user) const {
  return make_conninfo(dir_, database, user);
}

void embedded_postgres::stop() {
  if (pid_ <= 0) {
    return;
  }
  const pid_t child = pid_;
  pid_ = -1;
  int status = 0;
  bool lost = false;
  ::kill(child, SIGINT);
  if (!wait_exit(child, fast_shutdown_timeout, status, lost)) {
    notes_.push_back("PostgreSQL pid=" + std::to_string(child)
                     + " ignored the fast shutdown for 30 s; sent SIGQUIT");
    ::kill(child, SIGQUIT);
    if (!wait_exit(child, quit_timeout, status, lost)) {
      notes_.push_back("PostgreSQL pid=" + std::to_string(child)
                       + " ignored SIGQUIT; sent SIGKILL");
      ::kill(child, SIGKILL);
      while (::waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
          lost = true;
          break;
        }
      }
    }
  }
  if (lost) {
    notes_.push_back("PostgreSQL pid=" + std::to_string(child)
                     + " stopped; its exit status was collected elsewhere");
    return;
  }
  notes_.push_back("PostgreSQL pid=" + std::to_string(child) + " stopped ("
                   + describe_status(status) + ")");
}

int embedded_postgres::pid() const {
  return pid_;
}

const std::string& embedded_postgres::dir() const {
  return dir_;
}

bool embedded_postgres::initialised_now() const {
  return initialised_now_;
}

std::vector<std::string> embedded_postgres::notes() {
  std::vector<std::string> taken;
  taken.swap(notes_);
  return taken;
}

} // namespace troupe::storage

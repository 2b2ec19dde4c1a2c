#include "storage/listener.hpp"

#include <libpq-fe.h>

#include <poll.h>

namespace troupe::storage {

struct pg_listener::impl {
  PGconn* conn = nullptr;
  ~impl() {
    if (conn != nullptr) {
      PQfinish(conn);
    }
  }
};

pg_listener::pg_listener(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

pg_listener::~pg_listener() = default;

std::unique_ptr<pg_listener> pg_listener::open(const std::string& conninfo,
                                               const std::string& channel, std::string& error) {
  auto i = std::make_unique<impl>();
  i->conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(i->conn) != CONNECTION_OK) {
    error = PQerrorMessage(i->conn);
    return nullptr;
  }
  char* quoted = PQescapeIdentifier(i->conn, channel.c_str(), channel.size());
  if (quoted == nullptr) {
    error = PQerrorMessage(i->conn);
    return nullptr;
  }
  const std::string sql = std::string{"LISTEN "} + quoted;
  PQfreemem(quoted);
  PGresult* r = PQexec(i->conn, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) {
    error = PQerrorMessage(i->conn);
  }
  PQclear(r);
  if (!ok) {
    return nullptr;
  }
  return std::unique_ptr<pg_listener>{new pg_listener{std::move(i)}};
}

std::vector<std::string> pg_listener::wait(std::chrono::milliseconds timeout, bool& ok) {
  std::vector<std::string> out;
  ok = true;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(impl_->conn)) {
      out.emplace_back(n->extra != nullptr ? n->extra : "");
      PQfreemem(n);
    }
  };
  drain();
  if (!out.empty()) {
    return out;
  }
  pollfd fd{PQsocket(impl_->conn), POLLIN, 0};
  if (fd.fd < 0) {
    ok = false;
    return out;
  }
  const int ready = ::poll(&fd, 1, static_cast<int>(timeout.count()));
  if (ready < 0) {
    return out; // interrupted: the caller waits again
  }
  if (ready > 0) {
    if (PQconsumeInput(impl_->conn) == 0 || PQstatus(impl_->conn) != CONNECTION_OK) {
      ok = false;
      return out;
    }
    drain();
  }
  return out;
}

} // namespace troupe::storage

#include "storage/pg.hpp"

#include "protocol/error.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>

namespace troupe::storage {

namespace {

void clear_result(pg_result* result) {
  PQclear(result);
}

PGresult* raw(const std::shared_ptr<pg_result>& result) {
  return result.get();
}

// What a client may be told about a failed statement, by SQLSTATE class.
protocol::errc classify(std::string_view sqlstate) {
  if (sqlstate == "23505" || sqlstate == "23503") {
    return protocol::errc::conflict; // unique or foreign-key violation
  }
  const auto cls = sqlstate.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "57" || sqlstate == "40001" || sqlstate == "40P01") {
    return protocol::errc::service_unavailable; // connection, resources, shutdown, cancel
  }
  return protocol::errc::internal;
}

} // namespace

std::optional<std::string>
with_parameters(const std::string& conninfo,
                const std::vector<std::pair<std::string, std::string>>& replacements,
                std::string& error) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (options == nullptr) {
    error = parse_error != nullptr ? parse_error : "cannot parse the connection string";
    PQfreemem(parse_error);
    return std::nullopt;
  }
  auto quote = [](std::string_view value) {
    std::string out = "'";
    for (const char c : value) {
      if (c == '\\' || c == '\'') {
        out.push_back('\\');
      }
      out.push_back(c);
    }
    return out + "'";
  };
  auto replaced = [&replacements](std::string_view keyword) {
    return std::any_of(replacements.begin(), replacements.end(),
                       [keyword](const auto& r) { return r.first == keyword; });
  };
  std::string out;
  for (auto* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || replaced(o->keyword)) {
      continue;
    }
    out += std::string{o->keyword} + "=" + quote(o->val) + " ";
  }
  PQconninfoFree(options);
  for (const auto& [keyword, value] : replacements) {
    if (!value.empty()) {
      out += keyword + "=" + quote(value) + " ";
    }
  }
  if (!out.empty()) {
    out.pop_back();
  }
  return out;
}

std::optional<std::string> with_login(const std::string& conninfo, const std::string& user,
                                      const std::string& password, std::string& error) {
  return with_parameters(conninfo, {{"user", user}, {"password", password}}, error);
}

pg_rows::pg_rows(pg_result* result) : result_(result, clear_result) {}

int pg_rows::size() const {
  return result_ ? PQntuples(raw(result_)) : 0;
}

int pg_rows::columns() const {
  return result_ ? PQnfields(raw(result_)) : 0;
}

std::string_view pg_rows::get(int row, int column) const {
  const auto* r = raw(result_);
  return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
}

bool pg_rows::is_null(int row, int column) const {
  return PQgetisnull(raw(result_), row, column) == 1;
}

std::optional<std::string> pg_rows::optional(int row, int column) const {
  if (is_null(row, column)) {
    return std::nullopt;
  }
  return std::string{get(row, column)};
}

std::size_t pg_rows::affected() const {
  if (!result_) {
    return 0;
  }
  const char* n = PQcmdTuples(raw(result_));
  return n[0] == '\0' ? 0 : static_cast<std::size_t>(std::strtoull(n, nullptr, 10));
}

std::unique_ptr<pg_connection> pg_connection::connect(const std::string& conninfo,
                                                      std::string& error) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) {
    error = "out of memory";
    return nullptr;
  }
  // Notices (such as "relation already exists, skipping") would go to stderr.
  PQsetNoticeProcessor(
    conn, [](void*, const char*) {}, nullptr);
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) {
      error.pop_back();
    }
    PQfinish(conn);
    return nullptr;
  }
  return std::unique_ptr<pg_connection>{new pg_connection(conn)};
}

pg_connection::pg_connection(pg_conn* conn) : conn_(conn) {}

pg_connection::~pg_connection() {
  PQfinish(conn_);
}

bool pg_connection::healthy() const {
  return PQstatus(conn_) == CONNECTION_OK;
}

bool pg_connection::reset() {
  prepared_.clear();
  PQreset(conn_);
  return healthy();
}

int pg_connection::backend_pid() const {
  return PQbackendPID(conn_);
}

caf::error pg_connection::failure(pg_result* result, std::string_view what) {
  auto* r = result;
  std::string sqlstate;
  std::string message;
  if (r != nullptr) {
    if (const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
      sqlstate = state;
    }
    message = PQresultErrorMessage(r);
    PQclear(r);
  }
  if (message.empty()) {
    message = PQerrorMessage(conn_);
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  // No SQLSTATE and a broken connection: the server went away.
  const auto code = sqlstate.empty() && !healthy() ? protocol::errc::service_unavailable
                    : sqlstate.empty()             ? protocol::errc::internal
                                                   : classify(sqlstate);
  return caf::make_error(code, std::string{what}, sqlstate, message);
}

caf::expected<pg_rows> pg_connection::execute(const pg_statement& statement,
                                              const pg_params& params) {
  auto* conn = conn_;
  if (prepared_.count(statement.name) == 0) {
    auto* prepared = PQprepare(conn, statement.name, statement.sql, 0, nullptr);
    if (PQresultStatus(prepared) != PGRES_COMMAND_OK) {
      return failure(prepared, statement.name);
    }
    PQclear(prepared);
    prepared_.insert(statement.name);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p ? p->c_str() : nullptr);
  }
  auto* result = PQexecPrepared(conn, statement.name, static_cast<int>(values.size()),
                                values.data(), nullptr, nullptr, 0);
  const auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return failure(result, statement.name);
  }
  return pg_rows{result};
}

caf::expected<pg_rows> pg_connection::begin_with(const pg_statement& set_tenant,
                                                 const std::optional<std::string>& tenant,
                                                 const pg_statement& statement,
                                                 const pg_params& params) {
  return pipelined(&set_tenant, tenant, statement, params, false);
}

caf::expected<pg_rows> pg_connection::pipelined(const pg_statement* begin_with_tenant,
                                                const std::optional<std::string>& tenant,
                                                const pg_statement& statement,
                                                const pg_params& params, bool commit) {
  // What was sent, in order: each answers with one result (then a null), and a sync ends all.
  struct step {
    const char* what;
    const char* prepares = nullptr; // the statement name a PQsendPrepare registers
    bool target = false;            // the caller's statement: its rows are the answer
  };
  std::vector<step> steps;
  if (PQenterPipelineMode(conn_) != 1) {
    return failure(nullptr, "pipeline");
  }
  bool sent = true;
  if (begin_with_tenant != nullptr) {
    sent = PQsendQueryParams(conn_, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    steps.push_back({"BEGIN"});
  }
  auto send_prepared
    = [&](const pg_statement& s, const std::vector<const char*>& values, bool target) {
        if (prepared_.count(s.name) == 0) {
          sent = sent && PQsendPrepare(conn_, s.name, s.sql, 0, nullptr) == 1;
          steps.push_back({s.name, s.name, false});
        }
        sent = sent
               && PQsendQueryPrepared(conn_, s.name, static_cast<int>(values.size()), values.data(),
                                      nullptr, nullptr, 0)
                    == 1;
        steps.push_back({s.name, nullptr, target});
      };
  if (begin_with_tenant != nullptr && tenant) {
    send_prepared(*begin_with_tenant, {tenant->c_str()}, false);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p ? p->c_str() : nullptr);
  }
  send_prepared(statement, values, true);
  if (commit) {
    sent
      = sent && PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    steps.push_back({"COMMIT"});
  }
  sent = sent && PQpipelineSync(conn_) == 1;
  if (!sent) {
    auto err = failure(nullptr, "pipeline send");
    (void)PQexitPipelineMode(conn_);
    return err;
  }
  caf::error first_error;
  pg_rows rows;
  for (const auto& s : steps) {
    pg_result* result = PQgetResult(conn_);
    if (result == nullptr) {
      if (!first_error) {
        first_error = failure(nullptr, s.what); // the connection went away
      }
      break;
    }
    const auto status = PQresultStatus(result);
    if (status == PGRES_FATAL_ERROR) {
      if (!first_error) {
        first_error = failure(result, s.what); // clears the result
      } else {
        PQclear(result);
      }
    } else if (status == PGRES_PIPELINE_ABORTED) {
      PQclear(result); // an earlier step failed
    } else {
      if (s.prepares != nullptr) {
        prepared_.insert(s.prepares);
      }
      if (s.target) {
        rows = pg_rows{result};
      } else {
        PQclear(result);
      }
    }
    while (pg_result* extra = PQgetResult(conn_)) { // each step's results end with a null
      PQclear(extra);
    }
  }
  if (pg_result* sync = PQgetResult(conn_)) {
    PQclear(sync); // PGRES_PIPELINE_SYNC
  }
  if (PQexitPipelineMode(conn_) != 1 && !first_error) {
    first_error = failure(nullptr, "pipeline exit");
  }
  if (first_error) {
    return first_error;
  }
  return rows;
}

caf::expected<pg_rows> pg_connection::exec(const std::string& sql) {
  auto* result = PQexec(conn_, sql.c_str());
  const auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return failure(result, "exec");
  }
  return pg_rows{result};
}

} // namespace troupe::storage

#pragma once

// What the request-serving services (auth, users) share: answers a client may see, the one
// way to turn an error into one, and the two ways to reach PostgreSQL (a read on the pool, a
// write as audited work through the directory). Include only in actors' .cpp files.

#include "protocol/actors.hpp"
#include "protocol/auth.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "storage/db.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include <any>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace troupe::actors::kit {

using reply_promise = caf::typed_response_promise<protocol::auth_reply>;

template <class T>
using next_fn = std::function<void(caf::expected<T>)>;

/// A success: `status`, a JSON body, a Location.
protocol::auth_reply ok(int status, std::string body = {}, std::string location = {});

/// A problem the client sees with `detail`.
protocol::auth_reply problem(protocol::errc code, std::string detail);

/// An error a client may see in detail (a 4xx of ours made with one string; storage errors
/// carry the SQL message and are never shown, only their code is).
caf::error client_error(protocol::errc code, std::string detail);

/// A 400 `validation-failed` about `pointer`, as an error a body can return.
caf::error field_error(std::string pointer, std::string message);

/// A 403 `forbidden` naming the permission the caller lacks, as an error a body can return.
caf::error missing_permission(std::string permission, std::string detail);

/// Delivers `err`: a 4xx of ours as a problem (with its detail if it is a client_error;
/// `conflict_detail` for a storage conflict), anything else as the error itself (the HTTP
/// layer answers 5xx without details).
void fail(reply_promise& rp, const caf::error& err, const std::string& conflict_detail = {});

/// Parses `call.input` (a JSON object) and hands it to `dispatch`, which starts the operation
/// `call.op` (answering through `rp`) and returns false for an unknown one. A malformed input
/// or an unknown operation is `internal`: the HTTP layer validated the request, so either is
/// our bug.
template <class Dispatch>
caf::result<protocol::auth_reply> serve(reply_promise rp, const protocol::auth_call& call,
                                        Dispatch dispatch) {
  auto in
    = nlohmann::json::parse(call.input.empty() ? std::string{"{}"} : call.input, nullptr, false);
  if (!in.is_object()) {
    return caf::make_error(protocol::errc::internal, "service input is not a JSON object");
  }
  try {
    if (!dispatch(in)) {
      return caf::make_error(protocol::errc::internal, "unknown operation " + call.op);
    }
  } catch (const nlohmann::json::exception& e) {
    return caf::make_error(protocol::errc::internal, std::string{"service input: "} + e.what());
  }
  return rp;
}

/// One operation of a service: starts it with the parsed input, answering through `rp`.
template <class Self>
using op_fn = void (*)(Self, const protocol::auth_call&, const nlohmann::json&, reply_promise);

/// `serve` for a service whose operations are a table of functions by name (`call.op`).
template <class Self>
caf::result<protocol::auth_reply> serve_table(Self self, const protocol::auth_call& call,
                                              const std::map<std::string, op_fn<Self>>& ops) {
  auto rp = self->template make_response_promise<protocol::auth_reply>();
  return serve(rp, call, [self, &call, rp, &ops](const nlohmann::json& in) {
    auto op = ops.find(call.op);
    if (op == ops.end()) {
      return false;
    }
    op->second(self, call, in, rp);
    return true;
  });
}

/// A list page of `rows`, read with one row more than `limit` (API.md Conventions):
/// `{"data": head + render(row) for the first `limit` rows, "next_cursor": position(the last
/// row shown) when more follow, else null}`.
template <class Row, class Render, class Position>
nlohmann::json page(const std::vector<Row>& rows, std::uint32_t limit, Render render,
                    Position position, nlohmann::json head = nlohmann::json::array()) {
  for (std::size_t i = 0; i < rows.size() && i < limit; ++i) {
    head.push_back(render(rows[i]));
  }
  auto next = rows.size() > limit && limit > 0 ? nlohmann::json(position(rows[limit - 1]))
                                               : nlohmann::json(nullptr);
  return {{"data", std::move(head)}, {"next_cursor", std::move(next)}};
}

/// `page` of rows whose cursor is their `id`.
template <class Row, class Render>
nlohmann::json page(const std::vector<Row>& rows, std::uint32_t limit, Render render) {
  return page(rows, limit, render, [](const Row& r) { return r.id; });
}

/// Answers `value`: its error, else `status` with `render(*value)` as the JSON body.
template <class T, class Render>
void deliver(reply_promise& rp, const caf::expected<T>& value, int status, Render render) {
  if (!value) {
    fail(rp, value.error());
    return;
  }
  rp.deliver(
    ok(status, render(*value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
}

/// Answers a looked-up row: its error, 404 `not_found` with `missing` when there is none, else
/// 200 with `render(row)`.
template <class Row, class Render>
void deliver_found(reply_promise& rp, const caf::expected<std::optional<Row>>& row, Render render,
                   const std::string& missing) {
  if (row && !*row) {
    rp.deliver(problem(protocol::errc::not_found, missing));
    return;
  }
  deliver(rp, row, 200, [&render](const std::optional<Row>& found) { return render(*found); });
}

template <class Self>
protocol::directory_actor directory(Self self) {
  return self->system().registry().template get<protocol::directory_actor>(protocol::directory_key);
}

/// Runs `body` on the pool as the tenant (platform work if `tenant` is empty) and hands its
/// value to `next`.
template <class T, class Self>
void read_tx(Self self, const std::string& tenant,
             std::function<caf::expected<T>(storage::pg_transaction&)> body, next_fn<T> next) {
  constexpr std::chrono::seconds timeout{10};
  auto pool = self->system().registry().template get<storage::db_pool_actor>(protocol::db_pool_key);
  if (!pool) {
    next(caf::make_error(protocol::errc::service_unavailable, "database pool away"));
    return;
  }
  storage::db_work work{tenant.empty() ? std::nullopt : std::optional<std::string>{tenant},
                        [body](storage::pg_transaction& tx) -> caf::expected<std::any> {
                          auto value = body(tx);
                          if (!value) {
                            return std::move(value.error());
                          }
                          return std::any{std::move(*value)};
                        }};
  self->request(pool, timeout, protocol::run_atom_v, std::move(work))
    .then([next](storage::db_reply& r) { next(std::any_cast<T>(std::move(r.value))); },
          [next](caf::error& err) { next(std::move(err)); });
}

/// Runs `body` as audited work of `call`'s tenant (through the session's actor when
/// `session` is set) and hands its value to `next` after COMMIT.
template <class T, class Self>
void audited_tx(
  Self self, const protocol::auth_call& call, std::string action,
  std::function<caf::expected<T>(storage::pg_transaction&, protocol::audit_change&)> body,
  next_fn<T> next, const std::string& session = {}) {
  constexpr std::chrono::seconds timeout{15};
  auto dir = directory(self);
  if (!dir) {
    next(caf::make_error(protocol::errc::service_unavailable, "directory away"));
    return;
  }
  protocol::audited_work work;
  work.origin = call.origin;
  work.action = std::move(action);
  work.body = [body](storage::pg_transaction& tx,
                     protocol::audit_change& change) -> caf::expected<std::any> {
    auto value = body(tx, change);
    if (!value) {
      return std::move(value.error());
    }
    return std::any{std::move(*value)};
  };
  auto then = [next](protocol::audited_result& r) {
    next(std::any_cast<T>(std::move(r.value)));
  };
  auto or_else = [next](caf::error& err) {
    next(std::move(err));
  };
  if (session.empty()) {
    self->request(dir, timeout, protocol::run_atom_v, call.tenant_id, std::move(work))
      .then(then, or_else);
  } else {
    self->request(dir, timeout, protocol::session_atom_v, call.tenant_id, session, std::move(work))
      .then(then, or_else);
  }
}

} // namespace troupe::actors::kit

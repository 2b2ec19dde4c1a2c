#include "http/routes/auth.hpp"

#include "http/ask.hpp"
#include "http/body.hpp"
#include "http/query.hpp"
#include "protocol/auth.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"

#include <caf/actor_registry.hpp>
#include <nlohmann/json.hpp>

#include <ctime>

namespace troupe::http::routes {

namespace {

using json = nlohmann::json;
using protocol::errc;

response with_permission(errc code, const request& req, const request_context& ctx,
                         std::string detail, const std::string& permission) {
  protocol::problem p;
  p.code = code;
  p.detail = std::move(detail);
  p.instance = req.path;
  p.request_id = ctx.request_id;
  if (!permission.empty()) {
    p.extensions.emplace_back("required_permission", permission);
  }
  return problem_response(p);
}

response unauthenticated(const request& req, const request_context& ctx) {
  const auto& who = ctx.who;
  response res;
  if (who.refused != 0) {
    res = problem_response(static_cast<errc>(who.refused), req, ctx, who.detail);
    res.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  } else {
    res = problem_response(errc::unauthenticated, req, ctx,
                           "send Authorization: Bearer <access token or API key>");
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return res;
}

// Audits a refused permission (API.md "Audit log": permission.denied). Not awaited: the
// 403 does not depend on it.
void audit_denial(caf::actor_system& sys, const request& req, const request_context& ctx,
                  const std::string& permission) {
  auto dir = sys.registry().get<protocol::directory_actor>(protocol::directory_key);
  if (!dir) {
    return;
  }
  protocol::audited_work work;
  work.origin = origin_of(req, ctx);
  work.action = "permission.denied";
  work.body
    = [route = ctx.route, method = std::string{to_string(req.method)}, permission](
        storage::pg_transaction&, protocol::audit_change& change) -> caf::expected<std::any> {
    change.outcome = "denied";
    change.resource_type = "route";
    change.resource_id = method + " " + route;
    change.after = json{{"required_permission", permission}};
    return std::any{};
  };
  ask<protocol::audited_result>(
    sys, dir, ask_timeout, [](const caf::expected<protocol::audited_result>&) {},
    protocol::run_atom_v, ctx.tenant_id, std::move(work));
}

// The answer of the auth service as a response.
response to_response(const protocol::auth_reply& r, const request& req, const request_context& ctx,
                     bool paged) {
  if (r.problem != 0) {
    const auto code = static_cast<errc>(r.problem);
    if (!r.error_pointers.empty()) {
      std::vector<protocol::field_error> errors;
      for (std::size_t i = 0; i < r.error_pointers.size() && i < r.error_messages.size(); ++i) {
        errors.push_back({r.error_pointers[i], r.error_messages[i]});
      }
      return validation_problem(req, ctx, r.detail, std::move(errors));
    }
    auto res = with_permission(code, req, ctx, r.detail, r.required_permission);
    if (r.retry_after > 0) {
      res.headers.emplace_back("Retry-After", std::to_string(r.retry_after));
    }
    if (protocol::info(code).status == 401 && code != errc::invalid_credentials
        && code != errc::invalid_mfa_code) {
      res.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    }
    return res;
  }
  if (r.status == 204) {
    response res;
    res.status = 204;
    res.content_type.clear();
    return res;
  }
  auto body = r.body;
  if (paged) {
    // Lists answer their next position raw; the client sees an opaque cursor.
    auto parsed = json::parse(body, nullptr, false);
    if (parsed.is_object() && parsed["next_cursor"].is_string()) {
      parsed["next_cursor"] = encode_cursor(parsed["next_cursor"].get<std::string>());
      body = parsed.dump();
    }
  }
  auto res = json_response(r.status, std::move(body));
  if (!r.location.empty()) {
    res.headers.emplace_back("Location", r.location);
  }
  return res;
}

// Runs `op` on the auth service with `input` and answers with its reply.
void call_auth(caf::actor_system& sys, std::string op, const request& req,
               const request_context& ctx, const reply_fn& reply,
               const json& input = json::object(), bool paged = false) {
  call_service(sys, protocol::auth_key, std::move(op), req, ctx, reply, input.dump(), paged);
}

// -- idempotency keys (API.md "Idempotency", docs/idempotency.md) -------------------------------

bool valid_idempotency_key(std::string_view key) {
  return !key.empty() && key.size() <= 255
         && std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void ask_idempotency(caf::actor_system& sys, const std::string& tenant,
                     protocol::idempotency_call call,
                     std::function<void(caf::expected<protocol::idempotency_answer>)> then) {
  auto dir = sys.registry().get<protocol::directory_actor>(protocol::directory_key);
  ask<protocol::idempotency_answer>(sys, dir, ask_timeout, std::move(then),
                                    protocol::idempotency_atom_v, tenant, std::move(call));
}

// What is kept of a response: its body, media type and the headers a replay must repeat.
std::string kept(const response& r) {
  json headers = json::array();
  for (const auto& [name, value] : r.headers) {
    if (iequals(name, "Location") || iequals(name, "ETag")) {
      headers.push_back({name, value});
    }
  }
  return json{{"body", r.body}, {"content_type", r.content_type}, {"headers", headers}}.dump();
}

response replayed(int status, const std::string& text) {
  auto stored = json::parse(text, nullptr, false);
  response res;
  res.status = status;
  if (stored.is_object()) {
    res.body = stored.value("body", std::string{});
    res.content_type = stored.value("content_type", std::string{});
    for (const auto& h : stored.value("headers", json::array())) {
      if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string()) {
        res.headers.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
      }
    }
  }
  res.headers.emplace_back("Idempotent-Replayed", "true");
  return res;
}

// Runs `inner` at most once per (tenant, principal, key): the first use runs it and keeps
// its answer (unless a 5xx), a repeat replays it, a concurrent one is 409, another body 422.
void idempotent(caf::actor_system& sys, const request& req, const request_context& ctx,
                const reply_fn& reply, const handler_fn& inner, std::string key) {
  protocol::idempotency_call call;
  call.op = "claim";
  call.principal = ctx.who.type == "admin" ? std::string{"admin"} : ctx.who.type + ":" + ctx.who.id;
  call.key = std::move(key);
  call.fingerprint = protocol::crypto::sha256(std::string{to_string(req.method)} + " " + req.path
                                              + "\n" + protocol::crypto::sha256(req.body));
  auto* system = &sys;
  ask_idempotency(
    sys, ctx.tenant_id, call,
    [system, req, ctx, reply, inner, call](caf::expected<protocol::idempotency_answer> claim) {
      if (!claim) {
        auto res = problem_response(errc::service_unavailable, req, ctx);
        res.headers.emplace_back("Retry-After", "1");
        reply(std::move(res));
        return;
      }
      if (claim->outcome == "replay") {
        reply(replayed(claim->status, claim->response));
        return;
      }
      if (claim->outcome == "in_flight") {
        auto res = problem_response(errc::idempotency_in_flight, req, ctx,
                                    "a request with this Idempotency-Key is still running");
        res.headers.emplace_back("Retry-After", "1");
        reply(std::move(res));
        return;
      }
      if (claim->outcome == "mismatch") {
        reply(problem_response(errc::idempotency_key_reuse, req, ctx,
                               "this Idempotency-Key was used with another request"));
        return;
      }
      // Claimed: run the request, keep its answer before the client hears it.
      inner(req, ctx, [system, ctx, reply, call](response r) mutable {
        auto next = call;
        next.op = r.status >= 500 || r.stream ? "release" : "complete";
        next.status = r.status;
        if (next.op == "complete") {
          next.response = kept(r);
        }
        ask_idempotency(
          *system, ctx.tenant_id, std::move(next),
          [reply, r = std::move(r)](caf::expected<protocol::idempotency_answer>) mutable {
            reply(std::move(r));
          });
      });
    });
}

} // namespace

void call_service(caf::actor_system& sys, caf::atom_value service, std::string op,
                  const request& req, const request_context& ctx, const reply_fn& reply,
                  std::string input, bool paged) {
  protocol::auth_call call;
  call.op = std::move(op);
  call.tenant_id = ctx.tenant_id;
  call.who = ctx.who;
  call.origin = origin_of(req, ctx);
  call.input = std::move(input);
  // Both services answer this one message; the users_actor view of either is enough.
  auto target = sys.registry().get<protocol::users_actor>(service);
  auto* system = &sys;
  ask<protocol::auth_reply>(
    sys, target, ask_timeout,
    [system, req, ctx, reply, paged](caf::expected<protocol::auth_reply> r) {
      if (!r) {
        const auto code = protocol::to_errc(r.error());
        auto res
          = problem_response(code == errc::service_unavailable ? code : errc::internal, req, ctx);
        if (code == errc::service_unavailable) {
          res.headers.emplace_back("Retry-After", "1");
        }
        reply(std::move(res));
        return;
      }
      // A service's escalation guard refused a permission: audited like the route guard's.
      if (r->problem == static_cast<std::uint8_t>(errc::forbidden)
          && !r->required_permission.empty()) {
        audit_denial(*system, req, ctx, r->required_permission);
      }
      reply(to_response(*r, req, ctx, paged));
    },
    protocol::auth_atom_v, std::move(call));
}

namespace {

// A body of exactly `fields` (each a string of min..max characters; `optional` ones may be
// absent), or nullopt after answering the problem.
struct field {
  const char* name;
  std::size_t min;
  std::size_t max;
  bool required = true;
};

std::optional<json> string_body(const request& req, const request_context& ctx,
                                const reply_fn& reply, std::initializer_list<field> fields) {
  auto body = json_object_body(req, ctx, reply);
  if (!body) {
    return std::nullopt;
  }
  validator v;
  std::set<std::string> allowed;
  for (const auto& f : fields) {
    allowed.insert(f.name);
  }
  v.only(*body, allowed, "");
  json out = json::object();
  for (const auto& f : fields) {
    if (auto value = v.text(*body, f.name, std::string{"/"} + f.name, f.min, f.max, f.required)) {
      out[f.name] = std::move(*value);
    }
  }
  if (v.failed()) {
    reply(v.problem(req, ctx));
    return std::nullopt;
  }
  return out;
}

} // namespace

protocol::audit_origin origin_of(const request& req, const request_context& ctx) {
  protocol::audit_origin o;
  o.actor_type = ctx.who.type;
  o.actor_id = ctx.who.id;
  o.ip = ctx.remote;
  o.user_agent = std::string{req.header("User-Agent")};
  o.request_id = ctx.request_id;
  if (const auto tp = req.header("traceparent"); protocol::valid_traceparent(tp)) {
    o.traceparent = std::string{tp};
  }
  return o;
}

handler_fn guarded(const services& svc, std::string permission, handler_fn inner) {
  static const std::string users_write = "users:write";
  auto* sys = svc.system;
  return [sys, permission = std::move(permission), inner = std::move(inner)](
           const request& req, const request_context& ctx, const reply_fn& reply) {
    if (permission == "public") {
      inner(req, ctx, reply);
      return;
    }
    if (ctx.who.type == "anonymous") {
      reply(unauthenticated(req, ctx));
      return;
    }
    if (permission == "self|users:write" && ctx.who.type == "user"
        && ctx.param("id") == ctx.who.id) {
      inner(req, ctx, reply); // one's own record
      return;
    }
    const auto& needed = permission == "self|users:write" ? users_write : permission;
    if (needed == "self") {
      if (ctx.who.type != "user") {
        reply(problem_response(errc::forbidden, req, ctx,
                               "this route acts on a user's own account: use their access token"));
        return;
      }
    } else if (!protocol::permits(ctx.who.permissions, needed)) {
      if (sys != nullptr) {
        audit_denial(*sys, req, ctx, needed);
      }
      reply(with_permission(errc::forbidden, req, ctx, "the credential lacks " + needed, needed));
      return;
    }
    if (req.method == verb::post || req.method == verb::put || req.method == verb::patch
        || req.method == verb::del) {
      const auto key = req.header("Idempotency-Key");
      if (key.data() != nullptr) { // sent (an empty value too: that is refused below)
        if (!valid_idempotency_key(key)) {
          reply(problem_response(errc::bad_request, req, ctx,
                                 "Idempotency-Key must be 1 to 255 visible ASCII characters"));
          return;
        }
        if (sys != nullptr) {
          idempotent(*sys, req, ctx, reply, inner, std::string{key});
          return;
        }
      }
    }
    inner(req, ctx, reply);
  };
}

handler_fn signup(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto settings
      = json::parse(ctx.tenant_settings.empty() ? "{}" : ctx.tenant_settings, nullptr, false);
    if (settings.is_object() && settings.value("signup", std::string{"open"}) == "closed") {
      reply(problem_response(errc::forbidden, req, ctx, "signup is closed for this tenant"));
      return;
    }
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"email", "password", "display_name"}, "");
    json input = json::object();
    if (auto email = v.text(*body, "email", "/email", 3, 254, true)) {
      if (valid_email(*email)) {
        input["email"] = ascii_lower(*email);
      } else {
        v.error("/email", "must be an email address");
      }
    }
    if (auto password = v.text(*body, "password", "/password", 10, 1024, true)) {
      input["password"] = std::move(*password);
    }
    if (auto d = body->find("display_name"); d != body->end() && !d->is_null()) {
      if (auto name = v.text(*body, "display_name", "/display_name", 1, 200, false)) {
        input["display_name"] = std::move(*name);
      }
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_auth(*sys, "signup", req, ctx, reply, std::move(input));
  };
}

handler_fn login(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto in = string_body(req, ctx, reply, {{"email", 1, 254}, {"password", 1, 1024}});
    if (in) {
      (*in)["email"] = ascii_lower((*in)["email"].get<std::string>());
      call_auth(*sys, "login", req, ctx, reply, std::move(*in));
    }
  };
}

handler_fn mfa_verify(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto in = string_body(req, ctx, reply, {{"mfa_token", 1, 256}, {"code", 1, 64}})) {
      call_auth(*sys, "mfa_verify", req, ctx, reply, std::move(*in));
    }
  };
}

handler_fn refresh(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto in = string_body(req, ctx, reply, {{"refresh_token", 1, 256}})) {
      call_auth(*sys, "refresh", req, ctx, reply, std::move(*in));
    }
  };
}

handler_fn logout(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    call_auth(*sys, "logout", req, ctx, reply);
  };
}

handler_fn list_sessions(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto page = page_query(req, ctx, reply)) {
      call_auth(*sys, "sessions", req, ctx, reply, std::move(*page), true);
    }
  };
}

handler_fn revoke_session(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no live session of yours has this id")) {
      call_auth(*sys, "revoke_session", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn change_password(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto in = string_body(req, ctx, reply,
                              {{"current_password", 1, 1024}, {"new_password", 10, 1024}})) {
      call_auth(*sys, "password", req, ctx, reply, std::move(*in));
    }
  };
}

handler_fn totp_enroll(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    call_auth(*sys, "totp_enroll", req, ctx, reply);
  };
}

handler_fn totp_activate(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto in = string_body(req, ctx, reply, {{"code", 1, 64}})) {
      call_auth(*sys, "totp_activate", req, ctx, reply, std::move(*in));
    }
  };
}

handler_fn totp_disable(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto in = string_body(req, ctx, reply, {{"code", 1, 64}})) {
      call_auth(*sys, "totp_disable", req, ctx, reply, std::move(*in));
    }
  };
}

handler_fn create_api_key(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"name", "permissions", "expires_at"}, "");
    json input = json::object();
    if (auto name = v.text(*body, "name", "/name", 1, 200, true)) {
      input["name"] = std::move(*name);
    }
    auto perms = body->find("permissions");
    if (perms == body->end()) {
      v.error("/permissions", "is required");
    } else if (!perms->is_array() || perms->empty() || perms->size() > 64) {
      v.error("/permissions", "must be an array of 1 to 64 permissions");
    } else {
      std::vector<std::string> list;
      for (std::size_t i = 0; i < perms->size(); ++i) {
        const auto& p = (*perms)[i];
        if (!p.is_string() || !protocol::valid_permission(p.get<std::string>())) {
          v.error("/permissions/" + std::to_string(i),
                  "must be a permission of the catalogue, resource:* or *");
        } else if (std::find(list.begin(), list.end(), p.get<std::string>()) == list.end()) {
          list.push_back(p.get<std::string>());
        }
      }
      input["permissions"] = list;
    }
    if (auto e = body->find("expires_at"); e != body->end() && !e->is_null()) {
      auto seconds = e->is_string() ? rfc3339_seconds(e->get<std::string>()) : std::nullopt;
      if (!seconds) {
        v.error("/expires_at", "must be an RFC 3339 date-time");
      } else if (*seconds <= static_cast<std::int64_t>(std::time(nullptr))) {
        v.error("/expires_at", "must be in the future");
      } else {
        input["expires_at"] = e->get<std::string>();
      }
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_auth(*sys, "create_api_key", req, ctx, reply, std::move(input));
  };
}

handler_fn list_api_keys(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto page = page_query(req, ctx, reply)) {
      call_auth(*sys, "api_keys", req, ctx, reply, std::move(*page), true);
    }
  };
}

handler_fn revoke_api_key(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no API key has this id")) {
      call_auth(*sys, "revoke_api_key", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn users_me(const services&) {
  return [](const request& req, const request_context& ctx, const reply_fn& reply) {
    // The cached profile is a JSON object's text: splice the permissions in rather than
    // parse and print it again (this is the hottest authenticated route).
    const auto& profile = ctx.who.profile;
    if (profile.size() < 2 || profile.front() != '{' || profile.back() != '}') {
      reply(problem_response(errc::internal, req, ctx));
      return;
    }
    std::string body;
    body.reserve(profile.size() + 32 + 24 * ctx.who.permissions.size());
    body.append(profile, 0, profile.size() - 1);
    body += profile.size() > 2 ? ",\"permissions\":" : "\"permissions\":";
    body += json(ctx.who.permissions).dump();
    body += '}';
    reply(json_response(200, std::move(body)));
  };
}

handler_fn jwks(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto keys = sys->registry().get<protocol::key_manager_actor>(protocol::key_manager_key);
    ask<std::string>(
      *sys, keys, ask_timeout,
      [req, ctx, reply](caf::expected<std::string> document) {
        if (!document) {
          auto res = problem_response(errc::service_unavailable, req, ctx);
          res.headers.emplace_back("Retry-After", "1");
          reply(std::move(res));
          return;
        }
        auto res = json_response(200, std::move(*document));
        res.headers.emplace_back("Cache-Control", "public, max-age=300");
        reply(std::move(res));
      },
      protocol::jwks_atom_v);
  };
}

} // namespace troupe::http::routes

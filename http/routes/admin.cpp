#include "http/routes/admin.hpp"

#include "http/ask.hpp"
#include "http/body.hpp"
#include "http/query.hpp"
#include "http/routes/audit.hpp"
#include "protocol/crypto.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"
#include "protocol/tenants.hpp"

#include <caf/actor_registry.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <set>

namespace troupe::http::routes {

namespace {

using json = nlohmann::json;

bool valid_slug(const std::string& slug) {
  if (slug.size() < 2 || slug.size() > 63) {
    return false;
  }
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && c == '-');
  };
  for (std::size_t i = 0; i < slug.size(); ++i) {
    if (!ok(slug[i], i == 0)) {
      return false;
    }
  }
  return true;
}

// limits: {"principal"|"tenant"|"anonymous"|"inbound": [n, s], "requests_per_month": n}
void check_limits(validator& v, const json& limits) {
  if (!limits.is_object()) {
    v.error("/limits", "must be an object");
    return;
  }
  v.only(limits, {"principal", "tenant", "anonymous", "inbound", "requests_per_month"}, "/limits");
  for (const auto& [key, value] : limits.items()) {
    const auto pointer = "/limits/" + key;
    if (key == "requests_per_month") {
      if (!value.is_number_unsigned()) {
        v.error(pointer, "must be a non-negative integer");
      }
    } else if (key != "requests_per_month"
               && (key == "principal" || key == "tenant" || key == "anonymous"
                   || key == "inbound")) {
      const bool ok = value.is_array() && value.size() == 2 && value[0].is_number_unsigned()
                      && value[1].is_number_unsigned() && value[0].get<std::uint64_t>() > 0
                      && value[1].get<std::uint64_t>() > 0
                      && value[0].get<std::uint64_t>() <= 4294967295u
                      && value[1].get<std::uint64_t>() <= 4294967295u;
      if (!ok) {
        v.error(pointer, "must be [requests, seconds], two positive integers");
      }
    }
  }
}

void check_settings(validator& v, const json& settings) {
  if (!settings.is_object()) {
    v.error("/settings", "must be an object");
    return;
  }
  v.only(settings, {"signup"}, "/settings");
  if (auto it = settings.find("signup"); it != settings.end()) {
    if (!it->is_string() || (*it != "open" && *it != "closed")) {
      v.error("/settings/signup", R"(must be "open" or "closed")");
    }
  }
}

// -- answers -------------------------------------------------------------------------------

response failure(const caf::error& err, const request& req, const request_context& ctx) {
  const auto code = protocol::to_errc(err);
  std::string detail;
  if (code == protocol::errc::conflict) {
    detail = "the slug is taken";
  } else if (code == protocol::errc::not_found) {
    detail = "no tenant has this id or slug";
  }
  auto res = problem_response(code, req, ctx, detail);
  if (code == protocol::errc::service_unavailable) {
    res.headers.emplace_back("Retry-After", "1");
  }
  return res;
}

protocol::tenants_actor tenants(caf::actor_system& sys) {
  return sys.registry().get<protocol::tenants_actor>(protocol::tenants_key);
}

// Asks the tenants actor and answers with `status` and the tenant, or with the problem.
template <class... Ts>
void ask_tenant(caf::actor_system& sys, const request& req, const request_context& ctx,
                const reply_fn& reply, int status, Ts&&... xs) {
  ask<protocol::tenant_record>(
    sys, tenants(sys), ask_timeout,
    [req, ctx, reply, status](caf::expected<protocol::tenant_record> result) {
      if (!result) {
        reply(failure(result.error(), req, ctx));
        return;
      }
      auto res = json_response(status, protocol::tenant_json(*result).dump());
      if (status == 201) {
        res.headers.emplace_back("Location", "/admin/v1/tenants/" + result->id);
      }
      reply(std::move(res));
    },
    std::forward<Ts>(xs)...);
}

} // namespace

std::string admin_token_digest(std::string_view token) {
  return protocol::crypto::sha256(token);
}

handler_fn admin_only(const services& svc, handler_fn inner) {
  return [digest = svc.admin_token_digest, inner = std::move(inner)](
           const request& req, const request_context& ctx, const reply_fn& reply) {
    const auto authorization = req.header("Authorization");
    constexpr std::string_view scheme = "bearer ";
    bool ok = false;
    if (authorization.size() > scheme.size() && digest.size() == 32) {
      ok = iequals(authorization.substr(0, scheme.size()), scheme);
      const auto presented = protocol::crypto::sha256(authorization.substr(scheme.size()));
      // Fixed-length digests compared in constant time: neither length nor content leaks.
      ok = protocol::crypto::constant_time_equal(presented, digest) && ok;
    }
    if (!ok) {
      auto res = problem_response(protocol::errc::unauthenticated, req, ctx,
                                  "send Authorization: Bearer <admin.token>");
      res.headers.emplace_back("WWW-Authenticate", "Bearer");
      reply(std::move(res));
      return;
    }
    inner(req, ctx, reply);
  };
}

handler_fn create_tenant(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"slug", "name", "owner", "plan"}, "");
    protocol::tenant_creation c;
    if (auto slug = v.text(*body, "slug", "/slug", 2, 63, true)) {
      if (valid_slug(*slug)) {
        c.slug = std::move(*slug);
      } else {
        v.error("/slug", "must match ^[a-z0-9][a-z0-9-]{1,62}$");
      }
    }
    if (auto name = v.text(*body, "name", "/name", 1, 200, true)) {
      c.name = std::move(*name);
    }
    c.plan = v.text(*body, "plan", "/plan", 1, 64, false).value_or("free");
    auto owner = body->find("owner");
    if (owner == body->end()) {
      v.error("/owner", "is required");
    } else if (!owner->is_object()) {
      v.error("/owner", "must be an object");
    } else {
      v.only(*owner, {"email", "password"}, "/owner");
      if (auto email = v.text(*owner, "email", "/owner/email", 3, 254, true)) {
        if (valid_email(*email)) {
          c.owner_email = ascii_lower(*email);
        } else {
          v.error("/owner/email", "must be an email address");
        }
      }
      if (auto password = v.text(*owner, "password", "/owner/password", 10, 1024, true)) {
        c.owner_password = std::move(*password);
      }
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    ask_tenant(*sys, req, ctx, reply, 201, protocol::create_atom_v, std::move(c),
               admin_origin(req, ctx));
  };
}

handler_fn list_tenants(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    protocol::tenant_query q;
    std::string error;
    auto params = parse_query(req.query, {"limit", "cursor"}, error);
    if (!params) {
      reply(problem_response(protocol::errc::bad_request, req, ctx, error));
      return;
    }
    auto limit = page_limit(*params);
    if (!limit) {
      reply(problem_response(protocol::errc::bad_request, req, ctx,
                             "limit must be an integer from 1 to 200"));
      return;
    }
    q.limit = *limit;
    if (auto cursor = params->find("cursor"); cursor != params->end()) {
      auto id = decode_cursor(cursor->second);
      if (!id || !protocol::is_uuid(*id)) {
        reply(problem_response(protocol::errc::bad_request, req, ctx, "invalid cursor"));
        return;
      }
      q.after = std::move(*id);
    }
    ask<protocol::tenant_page>(
      *sys, tenants(*sys), ask_timeout,
      [req, ctx, reply](caf::expected<protocol::tenant_page> page) {
        if (!page) {
          reply(failure(page.error(), req, ctx));
          return;
        }
        json data = json::array();
        for (const auto& t : page->data) {
          data.push_back(protocol::tenant_json(t));
        }
        json body{{"data", std::move(data)},
                  {"next_cursor", page->next_cursor.empty()
                                    ? json(nullptr)
                                    : json(encode_cursor(page->next_cursor))}};
        reply(json_response(200, body.dump()));
      },
      protocol::list_atom_v, std::move(q));
  };
}

handler_fn get_tenant(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    ask_tenant(*sys, req, ctx, reply, 200, caf::get_atom_v, ctx.param("tenant"));
  };
}

handler_fn update_tenant(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"name", "plan", "status", "limits", "settings"}, "");
    protocol::tenant_update u;
    u.name = v.text(*body, "name", "/name", 1, 200, false).value_or("");
    u.plan = v.text(*body, "plan", "/plan", 1, 64, false).value_or("");
    if (auto status = v.text(*body, "status", "/status", 1, 16, false)) {
      if (*status == "active" || *status == "suspended") {
        u.status = std::move(*status);
      } else {
        v.error("/status", R"(must be "active" or "suspended")");
      }
    }
    if (auto limits = body->find("limits"); limits != body->end()) {
      check_limits(v, *limits);
      u.limits = limits->dump();
    }
    if (auto settings = body->find("settings"); settings != body->end()) {
      check_settings(v, *settings);
      u.settings = settings->dump();
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    ask_tenant(*sys, req, ctx, reply, 200, protocol::update_atom_v, ctx.param("tenant"),
               std::move(u), admin_origin(req, ctx));
  };
}

handler_fn delete_tenant(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    ask<protocol::tenant_record>(
      *sys, tenants(*sys), ask_timeout,
      [req, ctx, reply](caf::expected<protocol::tenant_record> result) {
        if (!result) {
          reply(failure(result.error(), req, ctx));
          return;
        }
        // Accepted: the purge is synchronous for now (docs/storage.md); the slug is free.
        json body{{"id", result->id}, {"slug", result->slug}, {"status", "deleted"}};
        reply(json_response(202, body.dump()));
      },
      caf::delete_atom_v, ctx.param("tenant"), admin_origin(req, ctx));
  };
}

} // namespace troupe::http::routes

#include "http/routes/users.hpp"

#include "http/body.hpp"
#include "http/query.hpp"
#include "http/routes/auth.hpp"
#include "protocol/auth.hpp"
#include "protocol/principal.hpp"
#include "protocol/request_id.hpp"

#include <nlohmann/json.hpp>

#include <regex>

namespace troupe::http::routes {

namespace {

using json = nlohmann::json;
using protocol::errc;

void call_users(const services& svc, std::string op, const request& req, const request_context& ctx,
                const reply_fn& reply, const json& input, bool paged = false) {
  call_service(*svc.system, protocol::users_key, std::move(op), req, ctx, reply, input.dump(),
               paged);
}

// The {id} of a users route, or nullopt after answering 404 (not a UUID: nobody has it).
std::optional<std::string> user_id(const request& req, const request_context& ctx,
                                   const reply_fn& reply) {
  return uuid_param(req, ctx, reply, "id", "no user has this id");
}

bool valid_role_name(const std::string& name) {
  static const std::regex pattern{"^[a-z][a-z0-9_-]{0,62}$"};
  return std::regex_match(name, pattern);
}

// A list of 0..max distinct strings at `key`, each passing `ok`, or nullopt with errors.
std::optional<std::vector<std::string>>
string_list(validator& v, const json& body, const std::string& key, std::size_t min,
            std::size_t max, const std::function<bool(const std::string&)>& ok,
            const std::string& what) {
  auto it = body.find(key);
  if (it == body.end()) {
    return std::nullopt;
  }
  if (!it->is_array() || it->size() < min || it->size() > max) {
    v.error("/" + key, "must be an array of " + std::to_string(min) + " to " + std::to_string(max)
                         + " " + what);
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& item = (*it)[i];
    if (!item.is_string() || !ok(item.get<std::string>())) {
      v.error("/" + key + "/" + std::to_string(i), "must be " + what);
    } else if (std::find(out.begin(), out.end(), item.get<std::string>()) == out.end()) {
      out.push_back(item.get<std::string>());
    }
  }
  return out;
}

const auto is_permission = [](const std::string& p) {
  return protocol::valid_permission(p);
};
const auto is_role_name = [](const std::string& n) {
  return valid_role_name(n);
};

// The body of POST (`create`) or PATCH /v1/roles, validated; nullopt after answering.
std::optional<json> role_body(const request& req, const request_context& ctx, const reply_fn& reply,
                              bool create) {
  auto body = json_object_body(req, ctx, reply);
  if (!body) {
    return std::nullopt;
  }
  validator v;
  json input = json::object();
  if (create) {
    v.only(*body, {"name", "permissions", "inherits"}, "");
    if (auto name = v.text(*body, "name", "/name", 1, 63, true)) {
      if (valid_role_name(*name)) {
        input["name"] = *name;
      } else {
        v.error("/name", "must match ^[a-z][a-z0-9_-]{0,62}$");
      }
    }
    if (body->find("permissions") == body->end()) {
      v.error("/permissions", "is required");
    }
  } else {
    v.only(*body, {"permissions", "inherits"}, "");
    input["name"] = ctx.param("name");
  }
  if (auto p = string_list(v, *body, "permissions", 0, 64, is_permission,
                           "permissions of the catalogue, resource:* or *")) {
    input["permissions"] = *p;
  }
  if (auto r = string_list(v, *body, "inherits", 0, 16, is_role_name, "role names")) {
    input["inherits"] = *r;
  }
  if (v.failed()) {
    reply(v.problem(req, ctx));
    return std::nullopt;
  }
  return input;
}

} // namespace

handler_fn list_users(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto page = page_query(req, ctx, reply)) {
      call_users(svc, "users", req, ctx, reply, *page, true);
    }
  };
}

handler_fn get_user(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = user_id(req, ctx, reply)) {
      call_users(svc, "user", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn update_user(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto id = user_id(req, ctx, reply);
    if (!id) {
      return;
    }
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"display_name"}, "");
    json input{{"id", *id}};
    auto name = body->find("display_name");
    if (name == body->end()) {
      v.error("/display_name", "is required");
    } else if (name->is_null()) {
      input["display_name"] = nullptr;
    } else if (auto text = v.text(*body, "display_name", "/display_name", 1, 200, true)) {
      input["display_name"] = *text;
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_users(svc, "update_user", req, ctx, reply, input);
  };
}

handler_fn delete_user(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = user_id(req, ctx, reply)) {
      call_users(svc, "delete_user", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn set_user_roles(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto id = user_id(req, ctx, reply);
    if (!id) {
      return;
    }
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"roles"}, "");
    json input{{"id", *id}};
    if (body->find("roles") == body->end()) {
      v.error("/roles", "is required");
    } else if (auto roles = string_list(v, *body, "roles", 1, 16, is_role_name, "role names")) {
      input["roles"] = *roles;
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_users(svc, "set_roles", req, ctx, reply, input);
  };
}

handler_fn list_roles(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (!req.query.empty()) {
      reply(problem_response(errc::bad_request, req, ctx,
                             "GET /v1/roles takes no query parameters: it is one page"));
      return;
    }
    call_users(svc, "roles", req, ctx, reply, json::object());
  };
}

handler_fn create_role(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto input = role_body(req, ctx, reply, true)) {
      call_users(svc, "create_role", req, ctx, reply, *input);
    }
  };
}

handler_fn get_role(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (!valid_role_name(ctx.param("name"))) {
      reply(problem_response(errc::not_found, req, ctx, "no role has this name"));
      return;
    }
    call_users(svc, "role", req, ctx, reply, json{{"name", ctx.param("name")}});
  };
}

handler_fn update_role(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (!valid_role_name(ctx.param("name"))) {
      reply(problem_response(errc::not_found, req, ctx, "no role has this name"));
      return;
    }
    if (auto input = role_body(req, ctx, reply, false)) {
      call_users(svc, "update_role", req, ctx, reply, *input);
    }
  };
}

handler_fn delete_role(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    std::string error;
    auto params = parse_query(req.query, {"force"}, error);
    if (!params) {
      reply(problem_response(errc::bad_request, req, ctx, error));
      return;
    }
    bool force = false;
    if (auto f = params->find("force"); f != params->end()) {
      if (f->second != "true" && f->second != "false") {
        reply(validation_problem(req, ctx, {}, {{"/query/force", R"(must be "true" or "false")"}}));
        return;
      }
      force = f->second == "true";
    }
    if (!valid_role_name(ctx.param("name"))) {
      reply(problem_response(errc::not_found, req, ctx, "no role has this name"));
      return;
    }
    call_users(svc, "delete_role", req, ctx, reply,
               json{{"name", ctx.param("name")}, {"force", force}});
  };
}

} // namespace troupe::http::routes

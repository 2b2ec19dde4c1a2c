#include "http/routes/platform.hpp"

#include "http/ask.hpp"
#include "protocol/actors.hpp"
#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>
#include <nlohmann/json.hpp>

namespace troupe::http::routes {

namespace {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '&':
      out += "&amp;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out.push_back(c);
    }
  }
  return out;
}

// The problem a failed ask turns into: 503 with Retry-After when an actor is away.
response ask_failure(const caf::error& err, const request& req, const request_context& ctx) {
  const auto code = protocol::to_errc(err);
  auto res = problem_response(code, req, ctx);
  if (code == protocol::errc::service_unavailable) {
    res.headers.emplace_back("Retry-After", "1");
  }
  return res;
}

} // namespace

handler_fn healthz() {
  return [](const request&, const request_context&, const reply_fn& reply) {
    reply(json_response(200, R"({"status":"ok"})"));
  };
}

handler_fn readyz(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request&, const request_context&, const reply_fn& reply) {
    // Two questions, one after the other: is every part of the node running, and does the
    // database answer? Either failing makes the node not ready.
    auto node = sys->registry().get<protocol::readiness_actor>(protocol::node_key);
    ask<protocol::readiness>(
      *sys, node, ask_timeout,
      [sys, reply](caf::expected<protocol::readiness> node_result) {
        auto db = sys->registry().get<protocol::readiness_actor>(protocol::db_pool_key);
        ask<protocol::readiness>(
          *sys, db, ask_timeout,
          [reply, node_result](caf::expected<protocol::readiness> db_result) {
            nlohmann::json checks = nlohmann::json::object();
            bool ready = true;
            auto merge = [&](const caf::expected<protocol::readiness>& r, const char* who) {
              if (!r) {
                ready = false;
                checks[who] = "unreachable";
                return;
              }
              ready = ready && r->ready;
              for (const auto& [name, status] : r->checks) {
                checks[name] = status;
              }
            };
            merge(node_result, "node");
            merge(db_result, "database");
            // Clustering arrives in a later issue; a single node is always "ok" here.
            checks["cluster"] = "ok";
            nlohmann::json body{{"status", ready ? "ready" : "unavailable"}, {"checks", checks}};
            auto res = json_response(ready ? 200 : 503, body.dump());
            if (!ready) {
              res.headers.emplace_back("Retry-After", "1");
            }
            reply(std::move(res));
          },
          protocol::ready_atom_v);
      },
      protocol::ready_atom_v);
  };
}

handler_fn metrics(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto actor = sys->registry().get<protocol::metrics_actor>(protocol::metrics_key);
    ask<std::string>(
      *sys, actor, ask_timeout,
      [reply, req, ctx](caf::expected<std::string> text) {
        if (!text) {
          reply(ask_failure(text.error(), req, ctx));
          return;
        }
        response res;
        res.content_type = "text/plain; version=0.0.4; charset=utf-8";
        res.body = std::move(*text);
        reply(std::move(res));
      },
      protocol::render_atom_v);
  };
}

handler_fn openapi() {
  return [](const request&, const request_context&, const reply_fn& reply) {
    reply(json_response(200, std::string{openapi_document()}));
  };
}

handler_fn problem_page() {
  return [](const request& req, const request_context& ctx, const reply_fn& reply) {
    const auto code = protocol::errc_from_name(ctx.param("code"));
    if (!code) {
      reply(problem_response(protocol::errc::not_found, req, ctx,
                             "no problem type is called \"" + ctx.param("code") + "\""));
      return;
    }
    const auto& entry = protocol::info(*code);
    if (req.header("Accept").find("application/json") != std::string_view::npos) {
      nlohmann::json body{{"type", "/problems/" + std::string{entry.name}},
                          {"code", entry.name},
                          {"status", entry.status},
                          {"title", entry.title},
                          {"description", entry.description}};
      reply(json_response(200, body.dump()));
      return;
    }
    const auto title = html_escape(entry.title);
    response res;
    res.content_type = "text/html; charset=utf-8";
    res.body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + title
               + " (" + std::string{entry.name} + ")</title></head>\n<body><h1>" + title
               + "</h1>\n<p>Problem code <code>" + std::string{entry.name} + "</code>, HTTP "
               + std::to_string(entry.status) + ".</p>\n<p>" + html_escape(entry.description)
               + "</p>\n<p>Every error response is an RFC 9457 "
                 "<code>application/problem+json</code> document whose <code>type</code> is "
                 "this page and whose <code>request_id</code> matches the server's log.</p>\n"
                 "</body></html>\n";
    reply(std::move(res));
  };
}

} // namespace troupe::http::routes

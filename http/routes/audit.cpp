#include "http/routes/audit.hpp"

#include "http/ask.hpp"
#include "http/query.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <memory>

namespace troupe::http::routes {

namespace {

using json = nlohmann::json;

/// Export pages: small enough to keep memory flat, big enough to amortise a round trip.
constexpr std::uint32_t export_page = 500;
constexpr std::chrono::seconds verify_timeout{60};

const std::set<std::string> filters{"actor_id", "action", "resource_type", "resource_id", "outcome",
                                    "from",     "to"};

response failure(const caf::error& err, const request& req, const request_context& ctx) {
  const auto code = protocol::to_errc(err);
  auto res = problem_response(code, req, ctx);
  if (code == protocol::errc::service_unavailable) {
    res.headers.emplace_back("Retry-After", "1");
  }
  return res;
}

bool plain_text(const std::string& s, std::size_t max) {
  return !s.empty() && s.size() <= max
         && std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// The query's filters (and paging), or the problem to answer.
std::optional<protocol::audit_query> audit_query_of(const request& req, const request_context& ctx,
                                                    const reply_fn& reply, bool paged) {
  auto allowed = filters;
  if (paged) {
    allowed.insert("limit");
    allowed.insert("cursor");
  }
  std::string error;
  auto params = parse_query(req.query, allowed, error);
  if (!params) {
    reply(problem_response(protocol::errc::bad_request, req, ctx, error));
    return std::nullopt;
  }
  protocol::audit_query q;
  std::vector<protocol::field_error> errors;
  auto text = [&](const char* name, std::string& into, std::size_t max) {
    if (auto it = params->find(name); it != params->end()) {
      if (plain_text(it->second, max)) {
        into = it->second;
      } else {
        errors.push_back({std::string{"/query/"} + name,
                          "must be 1 to " + std::to_string(max) + " printable characters"});
      }
    }
  };
  text("actor_id", q.actor_id, 200);
  text("action", q.action, 100);
  text("resource_type", q.resource_type, 100);
  text("resource_id", q.resource_id, 200);
  text("outcome", q.outcome, 16);
  if (!q.outcome.empty() && q.outcome != "success" && q.outcome != "denied"
      && q.outcome != "error") {
    errors.push_back({"/query/outcome", R"(must be "success", "denied" or "error")"});
  }
  for (const char* name : {"from", "to"}) {
    if (auto it = params->find(name); it != params->end()) {
      if (is_rfc3339(it->second)) {
        (std::string_view{name} == "from" ? q.from : q.to) = it->second;
      } else {
        errors.push_back({std::string{"/query/"} + name,
                          "must be an RFC 3339 date-time such as 2026-01-02T03:04:05.678Z"});
      }
    }
  }
  if (paged) {
    if (auto limit = page_limit(*params)) {
      q.limit = *limit;
    } else {
      errors.push_back({"/query/limit", "must be an integer from 1 to 200"});
    }
    if (auto it = params->find("cursor"); it != params->end()) {
      auto position = decode_cursor(it->second);
      const bool digits = position && !position->empty() && position->size() <= 19
                          && std::all_of(position->begin(), position->end(),
                                         [](unsigned char c) { return std::isdigit(c) != 0; });
      if (digits) {
        q.cursor = std::stoull(*position);
      }
      if (!digits || q.cursor == 0) {
        errors.push_back({"/query/cursor", "is not a cursor this endpoint returned"});
      }
    }
  }
  if (!errors.empty()) {
    reply(validation_problem(req, ctx, "the query parameters are invalid", std::move(errors)));
    return std::nullopt;
  }
  return q;
}

protocol::audit_reader_actor reader(caf::actor_system& sys) {
  return sys.registry().get<protocol::audit_reader_actor>(protocol::audit_reader_key);
}

// The lines of a page: each entry followed by a newline.
std::string ndjson(const protocol::audit_page& page) {
  std::string out;
  for (const auto& entry : page.data) {
    out += entry;
    out += '\n';
  }
  return out;
}

// The export's source: pages fetched one at a time, each only after the previous one was
// written (the session's back-pressure): memory holds one page whatever the log's size.
struct export_state {
  caf::actor_system* sys = nullptr;
  std::string tenant;
  protocol::audit_query query;
  std::string first; // the first page, fetched before the 200 was committed
  bool first_sent = false;
  bool done = false;
};

body_source export_source(std::shared_ptr<export_state> st) {
  return [st](const std::function<void(body_chunk)>& deliver) {
    if (!st->first_sent) {
      st->first_sent = true;
      deliver(body_chunk{std::move(st->first), st->done, false});
      return;
    }
    if (st->done) {
      deliver(body_chunk{{}, true, false});
      return;
    }
    ask<protocol::audit_page>(
      *st->sys, reader(*st->sys), ask_timeout,
      [st, deliver](caf::expected<protocol::audit_page> page) {
        if (!page) {
          deliver(body_chunk{{}, false, true}); // cut: the client sees a truncated body
          return;
        }
        st->query.cursor = page->next_cursor;
        st->done = page->next_cursor == 0;
        deliver(body_chunk{ndjson(*page), st->done, false});
      },
      protocol::list_atom_v, st->tenant, st->query);
  };
}

} // namespace

protocol::audit_origin admin_origin(const request& req, const request_context& ctx) {
  protocol::audit_origin origin;
  origin.actor_type = "admin";
  origin.ip = ctx.remote;
  origin.user_agent = std::string{req.header("User-Agent").substr(0, 512)};
  origin.request_id = ctx.request_id;
  return origin;
}

handler_fn list_audit(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto q = audit_query_of(req, ctx, reply, true);
    if (!q) {
      return;
    }
    ask<protocol::audit_page>(
      *sys, reader(*sys), ask_timeout,
      [req, ctx, reply](caf::expected<protocol::audit_page> page) {
        if (!page) {
          reply(failure(page.error(), req, ctx));
          return;
        }
        // The entries are rendered JSON already: joined, not parsed again.
        std::string body = R"({"data":[)";
        for (std::size_t i = 0; i < page->data.size(); ++i) {
          if (i > 0) {
            body += ',';
          }
          body += page->data[i];
        }
        body += R"(],"next_cursor":)";
        body += page->next_cursor == 0
                  ? std::string{"null"}
                  : json(encode_cursor(std::to_string(page->next_cursor))).dump();
        body += '}';
        reply(json_response(200, std::move(body)));
      },
      protocol::list_atom_v, ctx.tenant_id, std::move(*q));
  };
}

handler_fn verify_audit(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    std::string error;
    if (!parse_query(req.query, {}, error)) {
      reply(problem_response(protocol::errc::bad_request, req, ctx, error));
      return;
    }
    auto dir = sys->registry().get<protocol::directory_actor>(protocol::directory_key);
    ask<protocol::audit_verification>(
      *sys, dir, verify_timeout,
      [req, ctx, reply](caf::expected<protocol::audit_verification> v) {
        if (!v) {
          reply(failure(v.error(), req, ctx));
          return;
        }
        json body;
        if (v->ok) {
          body = {{"ok", true},
                  {"entries", v->entries},
                  {"head_hash", v->head_hash.empty() ? json(nullptr) : json(v->head_hash)}};
        } else {
          body = {{"ok", false}, {"first_bad_seq", v->first_bad_seq}, {"reason", v->reason}};
        }
        reply(json_response(200, body.dump()));
      },
      protocol::verify_atom_v, ctx.tenant_id);
  };
}

handler_fn export_audit(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto q = audit_query_of(req, ctx, reply, false);
    if (!q) {
      return;
    }
    q->oldest_first = true;
    q->limit = export_page;
    auto st = std::make_shared<export_state>();
    st->sys = sys;
    st->tenant = ctx.tenant_id;
    st->query = *q;
    // The first page decides the status: a database failure is still a clean 503 here.
    ask<protocol::audit_page>(
      *sys, reader(*sys), ask_timeout,
      [req, ctx, reply, st](caf::expected<protocol::audit_page> page) {
        if (!page) {
          reply(failure(page.error(), req, ctx));
          return;
        }
        st->first = ndjson(*page);
        st->query.cursor = page->next_cursor;
        st->done = page->next_cursor == 0;
        response res;
        res.status = 200;
        res.content_type = "application/x-ndjson";
        res.headers.emplace_back("Content-Disposition", "attachment; filename=\"audit.ndjson\"");
        res.stream = export_source(st);
        reply(std::move(res));
      },
      protocol::list_atom_v, st->tenant, st->query);
  };
}

} // namespace troupe::http::routes

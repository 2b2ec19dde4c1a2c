#include "http/routes/webhooks.hpp"

#include "http/body.hpp"
#include "http/routes/auth.hpp"
#include "protocol/auth.hpp"
#include "protocol/request_id.hpp"
#include "protocol/webhooks.hpp"

#include <nlohmann/json.hpp>

namespace troupe::http::routes {

namespace {

using json = nlohmann::json;
using protocol::errc;
namespace wh = protocol::webhooks;

constexpr std::size_t max_description = 500;
constexpr std::size_t max_patterns = 100;
constexpr std::uint32_t max_rate_per_s = 10000;

void call_webhooks(const services& svc, std::string op, const request& req,
                   const request_context& ctx, const reply_fn& reply, const json& input,
                   bool paged = false) {
  call_service(*svc.system, protocol::webhooks_key, std::move(op), req, ctx, reply, input.dump(),
               paged);
}

bool valid_source_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "events" || name == "sources") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// `description`: null or a string of at most 500 characters.
void description_field(validator& v, const json& body, json& input) {
  auto d = body.find("description");
  if (d == body.end()) {
    return;
  }
  if (d->is_null()) {
    input["description"] = nullptr;
  } else if (auto text = v.text(body, "description", "/description", 0, max_description, false)) {
    input["description"] = *text;
  }
}

// The validated fields of an endpoint body (POST: `create`, PATCH otherwise).
std::optional<json> endpoint_body(const request& req, const request_context& ctx,
                                  const reply_fn& reply, bool create) {
  auto body = json_object_body(req, ctx, reply);
  if (!body) {
    return std::nullopt;
  }
  validator v;
  json input = json::object();
  if (create) {
    v.only(*body, {"url", "events", "description", "rate_limit_per_s", "ordered", "disabled"}, "");
  } else {
    v.only(*body, {"url", "events", "description", "rate_limit_per_s", "disabled"}, "");
  }
  if (body->contains("url") || create) {
    if (auto url = v.text(*body, "url", "/url", 1, 2048, true)) {
      std::string error;
      if (wh::parse_url(*url, error)) {
        input["url"] = *url;
      } else {
        v.error("/url", error);
      }
    }
  }
  if (auto events = body->find("events"); events != body->end()) {
    if (events->is_null()) {
      input["events"] = nullptr;
    } else if (!events->is_array() || events->empty() || events->size() > max_patterns) {
      v.error("/events", "must be null (every event) or an array of 1 to 100 event types, "
                         "prefixes ending in .* or *");
    } else {
      std::vector<std::string> patterns;
      for (std::size_t i = 0; i < events->size(); ++i) {
        const auto& p = (*events)[i];
        if (!p.is_string() || !wh::valid_event_pattern(p.get<std::string>())) {
          v.error("/events/" + std::to_string(i),
                  "must be an event type, a prefix ending in .* or *");
        } else if (std::find(patterns.begin(), patterns.end(), p.get<std::string>())
                   == patterns.end()) {
          patterns.push_back(p.get<std::string>());
        }
      }
      input["events"] = patterns;
    }
  }
  description_field(v, *body, input);
  if (auto rate = body->find("rate_limit_per_s"); rate != body->end()) {
    if (rate->is_null()) {
      input["rate_limit_per_s"] = nullptr;
    } else if (!rate->is_number_unsigned() || rate->get<std::uint64_t>() < 1
               || rate->get<std::uint64_t>() > max_rate_per_s) {
      v.error("/rate_limit_per_s", "must be null or an integer from 1 to 10000");
    } else {
      input["rate_limit_per_s"] = rate->get<std::uint32_t>();
    }
  }
  for (const char* flag : {"ordered", "disabled"}) {
    if (auto f = body->find(flag); f != body->end()) {
      if (!f->is_boolean()) {
        v.error(std::string{"/"} + flag, "must be true or false");
      } else {
        input[flag] = f->get<bool>();
      }
    }
  }
  if (v.failed()) {
    reply(v.problem(req, ctx));
    return std::nullopt;
  }
  return input;
}

} // namespace

handler_fn publish_event(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"type", "payload"}, "");
    json input = json::object();
    if (auto type = v.text(*body, "type", "/type", 1, 200, true)) {
      if (wh::valid_event_type(*type)) {
        input["type"] = *type;
      } else {
        v.error("/type", "must match ^[a-z0-9_]+(\\.[a-z0-9_]+)*$");
      }
    }
    auto payload = body->find("payload");
    if (payload == body->end()) {
      v.error("/payload", "is required");
    } else if (!payload->is_object()) {
      v.error("/payload", "must be an object");
    } else {
      input["payload"] = *payload;
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_webhooks(svc, "publish", req, ctx, reply, input);
  };
}

handler_fn list_event_types(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto page = page_query(req, ctx, reply, {}, false)) {
      call_webhooks(svc, "event_types", req, ctx, reply, *page, true);
    }
  };
}

handler_fn create_event_type(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"name", "description"}, "");
    json input = json::object();
    if (auto name = v.text(*body, "name", "/name", 1, 200, true)) {
      if (wh::valid_event_type(*name)) {
        input["name"] = *name;
      } else {
        v.error("/name", "must match ^[a-z0-9_]+(\\.[a-z0-9_]+)*$");
      }
    }
    description_field(v, *body, input);
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_webhooks(svc, "create_event_type", req, ctx, reply, input);
  };
}

handler_fn list_endpoints(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto page = page_query(req, ctx, reply)) {
      call_webhooks(svc, "endpoints", req, ctx, reply, *page, true);
    }
  };
}

handler_fn create_endpoint(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto input = endpoint_body(req, ctx, reply, true)) {
      call_webhooks(svc, "create_endpoint", req, ctx, reply, *input);
    }
  };
}

handler_fn get_endpoint(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no webhook endpoint has this id")) {
      call_webhooks(svc, "endpoint", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn update_endpoint(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto id = uuid_param(req, ctx, reply, "id", "no webhook endpoint has this id");
    if (!id) {
      return;
    }
    if (auto input = endpoint_body(req, ctx, reply, false)) {
      (*input)["id"] = *id;
      call_webhooks(svc, "update_endpoint", req, ctx, reply, *input);
    }
  };
}

handler_fn delete_endpoint(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no webhook endpoint has this id")) {
      call_webhooks(svc, "delete_endpoint", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn rotate_endpoint_secret(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no webhook endpoint has this id")) {
      call_webhooks(svc, "rotate_secret", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn list_deliveries(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto id = uuid_param(req, ctx, reply, "id", "no webhook endpoint has this id");
    if (!id) {
      return;
    }
    auto page = page_query(req, ctx, reply, {"status"});
    if (!page) {
      return;
    }
    if (page->contains("status")) {
      const auto status = page->at("status").get<std::string>();
      if (status != "pending" && status != "succeeded" && status != "failed") {
        reply(validation_problem(req, ctx, {},
                                 {{"/query/status", "must be pending, succeeded or failed"}}));
        return;
      }
    }
    (*page)["endpoint_id"] = *id;
    call_webhooks(svc, "deliveries", req, ctx, reply, *page, true);
  };
}

handler_fn get_delivery(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no webhook delivery has this id")) {
      call_webhooks(svc, "delivery", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn retry_delivery(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no webhook delivery has this id")) {
      call_webhooks(svc, "retry_delivery", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn put_inbound_source(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    json input{{"source", ctx.param("source")}};
    if (!valid_source_name(ctx.param("source"))) {
      v.error("/source", "a source name must match ^[a-z0-9_]{1,64}$ (not events or sources)");
    }
    v.only(*body, {"scheme", "secret", "tolerance_s"}, "");
    auto scheme = v.text(*body, "scheme", "/scheme", 1, 32, true);
    if (scheme && *scheme != "standard-webhooks" && *scheme != "stripe" && *scheme != "github") {
      v.error("/scheme", "must be standard-webhooks, stripe or github");
      scheme.reset();
    }
    if (scheme) {
      input["scheme"] = *scheme;
    }
    if (auto secret = v.text(*body, "secret", "/secret", 8, 256, true)) {
      if (scheme && *scheme == "standard-webhooks" && !wh::secret_key(*secret)) {
        v.error("/secret", "must be whsec_ followed by the base64 of 16 to 64 bytes");
      } else {
        input["secret"] = *secret;
      }
    }
    input["tolerance_s"] = 300;
    if (auto t = body->find("tolerance_s"); t != body->end()) {
      if (!t->is_number_unsigned() || t->get<std::uint64_t>() < 1
          || t->get<std::uint64_t>() > 86400) {
        v.error("/tolerance_s", "must be an integer from 1 to 86400");
      } else {
        input["tolerance_s"] = t->get<std::uint32_t>();
      }
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_webhooks(svc, "put_source", req, ctx, reply, input);
  };
}

handler_fn receive_inbound(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    const auto& source = ctx.param("source");
    if (!valid_source_name(source)) {
      reply(problem_response(errc::not_found, req, ctx, "no inbound source has this name"));
      return;
    }
    auto parsed = json::parse(req.body, nullptr, false);
    if (parsed.is_discarded()) {
      reply(problem_response(errc::bad_request, req, ctx, "the body must be JSON"));
      return;
    }
    json headers = json::object();
    for (const char* name : {"webhook-id", "webhook-timestamp", "webhook-signature",
                             "stripe-signature", "x-hub-signature-256", "x-github-delivery"}) {
      auto value = req.header(name);
      if (!value.empty()) {
        headers[name] = std::string{value};
      }
    }
    call_webhooks(svc, "inbound", req, ctx, reply,
                  json{{"source", source}, {"headers", headers}, {"body", req.body}});
  };
}

handler_fn list_inbound_events(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto page = page_query(req, ctx, reply, {"source"});
    if (!page) {
      return;
    }
    if (page->contains("source") && !valid_source_name(page->at("source").get<std::string>())) {
      reply(validation_problem(req, ctx, {}, {{"/query/source", "must match ^[a-z0-9_]{1,64}$"}}));
      return;
    }
    call_webhooks(svc, "inbound_events", req, ctx, reply, *page, true);
  };
}

} // namespace troupe::http::routes

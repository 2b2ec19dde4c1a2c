#include "actors/webhooks/webhooks_service.hpp"

#include "actors/auth/service_kit.hpp"
#include "actors/webhooks/dispatcher.hpp"
#include "protocol/crypto.hpp"
#include "protocol/request_id.hpp"
#include "protocol/webhooks.hpp"
#include "storage/webhooks.hpp"

#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <ctime>

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using kit::client_error;
using kit::fail;
using kit::field_error;
using kit::ok;
using kit::reply_promise;
using protocol::errc;

constexpr std::int64_t rotation_overlap_s = 24 * 3600;

struct webhooks_state {
  static inline const char* name = "webhooks_service";
  webhooks_service_options options;
};

using service_pointer = protocol::users_actor::stateful_pointer<webhooks_state>;

json nullable(const std::optional<std::string>& v) {
  return v ? json(*v) : json(nullptr);
}

template <class T>
json nullable_number(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json endpoint_json(const storage::endpoint_row& e) {
  return {{"id", e.id},
          {"url", e.url},
          {"description", nullable(e.description)},
          {"events", e.events ? json(*e.events) : json(nullptr)},
          {"rate_limit_per_s", nullable_number(e.rate_limit_per_s)},
          {"ordered", e.ordered},
          {"disabled", e.disabled},
          {"disabled_reason", nullable(e.disabled_reason)},
          {"created_at", e.created_at},
          {"updated_at", e.updated_at}};
}

json delivery_json(const storage::delivery_row& d) {
  return {{"id", d.id},
          {"endpoint_id", d.endpoint_id},
          {"event_id", d.event_id},
          {"event_type", d.event_type},
          {"status", d.status},
          {"attempt_count", d.attempt_count},
          {"next_attempt_at", nullable(d.next_attempt_at)},
          {"last_status_code", nullable_number(d.last_status_code)},
          {"created_at", d.created_at},
          {"updated_at", d.updated_at}};
}

json attempt_json(const storage::attempt_row& a) {
  return {{"n", a.n},
          {"at", a.at},
          {"status_code", nullable_number(a.status_code)},
          {"duration_ms", a.duration_ms},
          {"response_body", nullable(a.response_body)},
          {"error", nullable(a.error)}};
}

json source_json(const storage::inbound_source_row& s) {
  return {{"name", s.name},
          {"scheme", s.scheme},
          {"tolerance_s", s.tolerance_s},
          {"created_at", s.created_at},
          {"updated_at", s.updated_at}};
}

json inbound_json(const storage::inbound_event_row& e) {
  return {{"id", e.id},
          {"source", e.source},
          {"provider_event_id", e.provider_event_id},
          {"event_id", e.event_id},
          {"received_at", e.received_at},
          {"body", json::parse(e.body, nullptr, false)}};
}

// A host an endpoint may not name unless private targets are allowed: a private address
// literal or a localhost name (names that resolve to one are refused when delivering).
bool private_host(const std::string& host) {
  if (host == "localhost" || (host.size() > 10 && host.substr(host.size() - 10) == ".localhost")) {
    return true;
  }
  unsigned char bytes[16];
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1) {
    return protocol::webhooks::forbidden_address(bytes, 4);
  }
  if (inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
    return protocol::webhooks::forbidden_address(bytes, 16);
  }
  return false;
}

caf::error check_url(service_pointer self, const std::string& url) {
  std::string error;
  auto target = protocol::webhooks::parse_url(url, error);
  if (!target) {
    return field_error("/url", error);
  }
  if (!self->state.options.allow_private_targets && private_host(target->host)) {
    return field_error("/url", "targets a private, loopback, link-local or reserved address "
                               "(webhooks.allow-private-targets is false)");
  }
  return {};
}

std::optional<std::vector<std::string>> optional_strings(const json& v) {
  if (v.is_null()) {
    return std::nullopt;
  }
  return v.get<std::vector<std::string>>();
}

template <class T>
std::optional<T> optional_value(const json& v) {
  if (v.is_null()) {
    return std::nullopt;
  }
  return v.get<T>();
}

// Applies the fields present in `in` to `f`.
void apply_fields(const json& in, storage::endpoint_fields& f) {
  if (in.contains("url")) {
    f.url = in.at("url").get<std::string>();
  }
  if (in.contains("description")) {
    f.description = optional_value<std::string>(in.at("description"));
  }
  if (in.contains("events")) {
    f.events = optional_strings(in.at("events"));
  }
  if (in.contains("rate_limit_per_s")) {
    f.rate_limit_per_s = optional_value<std::uint32_t>(in.at("rate_limit_per_s"));
  }
  if (in.contains("ordered")) {
    f.ordered = in.at("ordered").get<bool>();
  }
  if (in.contains("disabled")) {
    const bool disabled = in.at("disabled").get<bool>();
    if (disabled != f.disabled) {
      f.disabled_reason = disabled ? std::optional<std::string>{"manual"} : std::nullopt;
    }
    f.disabled = disabled;
  }
}

storage::endpoint_fields fields_of(const storage::endpoint_row& e) {
  return {e.url,     e.description, e.events,         e.rate_limit_per_s,
          e.ordered, e.disabled,    e.disabled_reason};
}

void poke(service_pointer self) {
  poke_webhook_dispatcher(self->system());
}

// -- events and event types ---------------------------------------------------------------------

void publish(service_pointer self, const protocol::auth_call& call, const json& in,
             reply_promise rp) {
  const auto type = in.at("type").get<std::string>();
  const auto payload = in.at("payload").dump();
  kit::audited_tx<storage::event_row>(
    self, call, "event.published",
    [type, payload, tp = call.origin.traceparent](
      storage::pg_transaction& tx,
      protocol::audit_change& change) -> caf::expected<storage::event_row> {
      storage::webhook_repository repo{tx};
      auto event = repo.publish(type, payload, {}, tp);
      if (event) {
        change.resource_type = "event";
        change.resource_id = event->id;
        change.after = json{{"type", type}, {"deliveries", event->deliveries}};
      }
      return event;
    },
    [self, rp](caf::expected<storage::event_row> event) mutable {
      if (event && event->deliveries > 0) {
        poke(self);
      }
      kit::deliver(rp, event, 202, [](const storage::event_row& e) {
        return json{{"id", e.id}, {"type", e.type}, {"created_at", e.created_at}};
      });
    });
}

bool is_builtin_type(const std::string& name) {
  for (const auto& [builtin, description] : builtin_event_types()) {
    if (builtin == name) {
      return true;
    }
  }
  return false;
}

void list_event_types(service_pointer self, const protocol::auth_call& call, const json& in,
                      reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  kit::read_tx<std::vector<storage::event_type_row>>(
    self, call.tenant_id,
    [cursor, limit](storage::pg_transaction& tx) {
      storage::webhook_repository repo{tx};
      return repo.event_types(cursor, limit + 1);
    },
    [rp, limit, cursor](caf::expected<std::vector<storage::event_type_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      // The built-in types head the first page; the cursor pages through registered ones.
      json builtins = json::array();
      if (cursor.empty()) {
        for (const auto& [name, description] : builtin_event_types()) {
          builtins.push_back({{"name", name},
                              {"description", description},
                              {"builtin", true},
                              {"created_at", nullptr}});
        }
      }
      auto render = [](const storage::event_type_row& r) {
        return json{{"name", r.name},
                    {"description", nullable(r.description)},
                    {"builtin", false},
                    {"created_at", r.created_at}};
      };
      auto name = [](const storage::event_type_row& r) {
        return r.name;
      };
      rp.deliver(ok(200, kit::page(*rows, limit, render, name, std::move(builtins)).dump()));
    });
}

void create_event_type(service_pointer self, const protocol::auth_call& call, const json& in,
                       reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  const auto description = optional_value<std::string>(in.value("description", json(nullptr)));
  if (is_builtin_type(name)) {
    rp.deliver(kit::problem(errc::conflict, "this is a built-in event type"));
    return;
  }
  kit::audited_tx<storage::event_type_row>(
    self, call, "webhook.event_type.created",
    [name, description](storage::pg_transaction& tx,
                        protocol::audit_change& change) -> caf::expected<storage::event_type_row> {
      storage::webhook_repository repo{tx};
      auto row = repo.insert_event_type(name, description);
      if (row) {
        change.resource_type = "event_type";
        change.resource_id = name;
        change.after = json{{"name", name}, {"description", nullable(description)}};
      }
      return row;
    },
    [rp](caf::expected<storage::event_type_row> row) mutable {
      if (!row) {
        fail(rp, row.error(), "an event type with this name exists");
        return;
      }
      rp.deliver(ok(201,
                    json{{"name", row->name},
                         {"description", nullable(row->description)},
                         {"builtin", false},
                         {"created_at", row->created_at}}
                      .dump(),
                    "/v1/webhooks/event-types/" + row->name));
    });
}

// -- endpoints
// ---------------------------------------------------------------------------------------

void list_endpoints(service_pointer self, const protocol::auth_call& call, const json& in,
                    reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  kit::read_tx<std::vector<storage::endpoint_row>>(
    self, call.tenant_id,
    [cursor, limit](storage::pg_transaction& tx) {
      storage::webhook_repository repo{tx};
      return repo.endpoints(cursor, limit + 1);
    },
    [rp, limit](caf::expected<std::vector<storage::endpoint_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      rp.deliver(ok(200, kit::page(*rows, limit, endpoint_json).dump()));
    });
}

void get_endpoint(service_pointer self, const protocol::auth_call& call, const json& in,
                  reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  kit::read_tx<std::optional<storage::endpoint_row>>(
    self, call.tenant_id,
    [id](storage::pg_transaction& tx) {
      storage::webhook_repository repo{tx};
      return repo.endpoint(id, false);
    },
    [rp](caf::expected<std::optional<storage::endpoint_row>> row) mutable {
      kit::deliver_found(rp, row, endpoint_json, "no webhook endpoint has this id");
    });
}

void create_endpoint(service_pointer self, const protocol::auth_call& call, const json& in,
                     reply_promise rp) {
  storage::endpoint_fields f;
  apply_fields(in, f);
  if (auto err = check_url(self, f.url)) {
    fail(rp, err);
    return;
  }
  const auto id = protocol::new_uuid_v7();
  const auto secret = protocol::webhooks::make_secret();
  const auto sealed = protocol::crypto::seal(self->state.options.seal_key, secret, id);
  kit::audited_tx<storage::endpoint_row>(
    self, call, "webhook.endpoint.created",
    [id, f, sealed](storage::pg_transaction& tx,
                    protocol::audit_change& change) -> caf::expected<storage::endpoint_row> {
      storage::webhook_repository repo{tx};
      auto row = repo.insert_endpoint(id, f, sealed);
      if (row) {
        change.resource_type = "webhook_endpoint";
        change.resource_id = id;
        change.after = endpoint_json(*row);
      }
      return row;
    },
    [rp, secret](caf::expected<storage::endpoint_row> row) mutable {
      if (!row) {
        fail(rp, row.error());
        return;
      }
      auto body = endpoint_json(*row);
      body["secret"] = secret; // shown once, here
      rp.deliver(ok(201, body.dump(), "/v1/webhooks/endpoints/" + row->id));
    });
}

void update_endpoint(service_pointer self, const protocol::auth_call& call, const json& in,
                     reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  if (in.contains("url")) {
    if (auto err = check_url(self, in.at("url").get<std::string>())) {
      fail(rp, err);
      return;
    }
  }
  kit::audited_tx<storage::endpoint_row>(
    self, call, "webhook.endpoint.updated",
    [id, in](storage::pg_transaction& tx,
             protocol::audit_change& change) -> caf::expected<storage::endpoint_row> {
      storage::webhook_repository repo{tx};
      auto before = repo.endpoint(id, true);
      if (!before) {
        return std::move(before.error());
      }
      if (!*before) {
        return client_error(errc::not_found, "no webhook endpoint has this id");
      }
      auto f = fields_of(**before);
      apply_fields(in, f);
      auto after = repo.update_endpoint(id, f);
      if (!after) {
        return std::move(after.error());
      }
      if (!*after) {
        return client_error(errc::not_found, "no webhook endpoint has this id");
      }
      change.resource_type = "webhook_endpoint";
      change.resource_id = id;
      change.before = endpoint_json(**before);
      change.after = endpoint_json(**after);
      return std::move(**after);
    },
    [self, rp](caf::expected<storage::endpoint_row> row) mutable {
      if (row && !row->disabled) {
        poke(self);
      }
      kit::deliver(rp, row, 200, endpoint_json);
    });
}

void delete_endpoint(service_pointer self, const protocol::auth_call& call, const json& in,
                     reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  kit::audited_tx<bool>(
    self, call, "webhook.endpoint.deleted",
    [id](storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<bool> {
      storage::webhook_repository repo{tx};
      auto before = repo.endpoint(id, true);
      if (!before) {
        return std::move(before.error());
      }
      if (!*before) {
        return client_error(errc::not_found, "no webhook endpoint has this id");
      }
      auto removed = repo.delete_endpoint(id);
      if (!removed) {
        return removed;
      }
      change.resource_type = "webhook_endpoint";
      change.resource_id = id;
      change.before = endpoint_json(**before);
      return true;
    },
    [rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      rp.deliver(ok(204));
    });
}

void rotate_secret(service_pointer self, const protocol::auth_call& call, const json& in,
                   reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  const auto secret = protocol::webhooks::make_secret();
  const auto sealed = protocol::crypto::seal(self->state.options.seal_key, secret, id);
  kit::audited_tx<storage::endpoint_row>(
    self, call, "webhook.endpoint.secret_rotated",
    [id, sealed](storage::pg_transaction& tx,
                 protocol::audit_change& change) -> caf::expected<storage::endpoint_row> {
      storage::webhook_repository repo{tx};
      auto row = repo.rotate_secret(id, sealed, rotation_overlap_s);
      if (!row) {
        return std::move(row.error());
      }
      if (!*row) {
        return client_error(errc::not_found, "no webhook endpoint has this id");
      }
      change.resource_type = "webhook_endpoint";
      change.resource_id = id;
      change.after = json{{"previous_secret_signs_for_s", rotation_overlap_s}};
      return std::move(**row);
    },
    [rp, secret](caf::expected<storage::endpoint_row> row) mutable {
      if (!row) {
        fail(rp, row.error());
        return;
      }
      rp.deliver(ok(200, json{{"secret", secret}}.dump()));
    });
}

// -- deliveries
// --------------------------------------------------------------------------------------

void list_deliveries(service_pointer self, const protocol::auth_call& call, const json& in,
                     reply_promise rp) {
  const auto endpoint = in.at("endpoint_id").get<std::string>();
  const auto status = in.value("status", std::string{});
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  using result = std::optional<std::vector<storage::delivery_row>>;
  kit::read_tx<result>(
    self, call.tenant_id,
    [endpoint, status, cursor, limit](storage::pg_transaction& tx) -> caf::expected<result> {
      storage::webhook_repository repo{tx};
      auto e = repo.endpoint(endpoint, false);
      if (!e) {
        return std::move(e.error());
      }
      if (!*e) {
        return result{};
      }
      auto rows = repo.deliveries(endpoint, status, cursor, limit + 1);
      if (!rows) {
        return std::move(rows.error());
      }
      return result{std::move(*rows)};
    },
    [rp, limit](caf::expected<result> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
      } else if (!*rows) {
        rp.deliver(kit::problem(errc::not_found, "no webhook endpoint has this id"));
      } else {
        // The endpoint is the list's own: its items do not repeat it.
        auto item = [](const storage::delivery_row& d) {
          auto out = delivery_json(d);
          out.erase("endpoint_id");
          return out;
        };
        rp.deliver(ok(200, kit::page(**rows, limit, item).dump()));
      }
    });
}

void get_delivery(service_pointer self, const protocol::auth_call& call, const json& in,
                  reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  kit::read_tx<std::optional<json>>(
    self, call.tenant_id,
    [id](storage::pg_transaction& tx) -> caf::expected<std::optional<json>> {
      storage::webhook_repository repo{tx};
      auto d = repo.delivery(id);
      if (!d) {
        return std::move(d.error());
      }
      if (!*d) {
        return std::optional<json>{};
      }
      auto attempts = repo.attempts(id);
      if (!attempts) {
        return std::move(attempts.error());
      }
      auto out = delivery_json(**d);
      out["attempts"] = json::array();
      for (const auto& a : *attempts) {
        out["attempts"].push_back(attempt_json(a));
      }
      return std::optional<json>{std::move(out)};
    },
    [rp](caf::expected<std::optional<json>> d) mutable {
      kit::deliver_found(
        rp, d, [](const json& found) { return found; }, "no webhook delivery has this id");
    });
}

void retry_delivery(service_pointer self, const protocol::auth_call& call, const json& in,
                    reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  kit::audited_tx<storage::delivery_row>(
    self, call, "webhook.delivery.retried",
    [id](storage::pg_transaction& tx,
         protocol::audit_change& change) -> caf::expected<storage::delivery_row> {
      storage::webhook_repository repo{tx};
      auto before = repo.delivery(id);
      if (!before) {
        return std::move(before.error());
      }
      if (!*before) {
        return client_error(errc::not_found, "no webhook delivery has this id");
      }
      auto row = repo.retry(id);
      if (!row) {
        return std::move(row.error());
      }
      if (!*row) {
        return client_error(errc::not_found, "no webhook delivery has this id");
      }
      change.resource_type = "webhook_delivery";
      change.resource_id = id;
      change.before = json{{"status", (*before)->status}};
      change.after = json{{"status", (*row)->status}};
      return std::move(**row);
    },
    [self, rp](caf::expected<storage::delivery_row> row) mutable {
      if (row) {
        poke(self);
      }
      kit::deliver(rp, row, 202, delivery_json);
    });
}

// -- inbound
// -----------------------------------------------------------------------------------------

std::string source_aad(const std::string& tenant, const std::string& name) {
  return "inbound:" + tenant + ":" + name;
}

void put_source(service_pointer self, const protocol::auth_call& call, const json& in,
                reply_promise rp) {
  const auto name = in.at("source").get<std::string>();
  const auto scheme = in.at("scheme").get<std::string>();
  const auto tolerance = in.value("tolerance_s", 300);
  const auto sealed
    = protocol::crypto::seal(self->state.options.seal_key, in.at("secret").get<std::string>(),
                             source_aad(call.tenant_id, name));
  kit::audited_tx<storage::inbound_source_row>(
    self, call, "inbound.source.updated",
    [name, scheme, tolerance, sealed](storage::pg_transaction& tx, protocol::audit_change& change)
      -> caf::expected<storage::inbound_source_row> {
      storage::webhook_repository repo{tx};
      auto put = repo.put_source(name, scheme, sealed, tolerance);
      if (!put) {
        return std::move(put.error());
      }
      change.resource_type = "inbound_source";
      change.resource_id = name;
      if (put->second) {
        change.before = source_json(*put->second);
      }
      change.after = source_json(put->first);
      return std::move(put->first);
    },
    [rp](caf::expected<storage::inbound_source_row> row) mutable {
      kit::deliver(rp, row, 200, source_json);
    });
}

struct inbound_outcome {
  std::string id;
  bool duplicate = false;
};

// Verifies a received webhook against its source, then stores it (once per provider event
// id) and publishes `inbound.<source>` in the same transaction.
void receive(service_pointer self, const protocol::auth_call& call, const json& in,
             reply_promise rp) {
  const auto name = in.at("source").get<std::string>();
  const auto headers = in.at("headers");
  const auto body = in.at("body").get<std::string>();
  kit::read_tx<std::optional<storage::inbound_source_row>>(
    self, call.tenant_id,
    [name](storage::pg_transaction& tx) {
      storage::webhook_repository repo{tx};
      return repo.source(name);
    },
    [self, call, name, headers, body,
     rp](caf::expected<std::optional<storage::inbound_source_row>> source) mutable {
      if (!source) {
        fail(rp, source.error());
        return;
      }
      if (!*source) {
        rp.deliver(kit::problem(errc::not_found, "no inbound source has this name"));
        return;
      }
      const auto& s = **source;
      auto secret = protocol::crypto::open(self->state.options.seal_key, s.secret,
                                           source_aad(call.tenant_id, name));
      if (!secret) {
        fail(rp, caf::make_error(errc::internal, "inbound source secret cannot be opened"));
        return;
      }
      auto header = [&headers](const char* key) {
        return headers.value(key, std::string{});
      };
      const std::int64_t now = std::time(nullptr);
      namespace wh = protocol::webhooks;
      wh::verdict v = wh::verdict::missing;
      std::string provider_id;
      auto parsed = json::parse(body, nullptr, false);
      if (s.scheme == "standard-webhooks") {
        v = wh::verify_standard(*secret, header("webhook-id"), header("webhook-timestamp"),
                                header("webhook-signature"), body, now, s.tolerance_s);
        provider_id = header("webhook-id");
      } else if (s.scheme == "stripe") {
        v = wh::verify_stripe(*secret, header("stripe-signature"), body, now, s.tolerance_s);
        if (parsed.is_object() && parsed.contains("id") && parsed.at("id").is_string()) {
          provider_id = parsed.at("id").get<std::string>();
        }
      } else {
        v = wh::verify_github(*secret, header("x-hub-signature-256"), body);
        provider_id = header("x-github-delivery");
      }
      if (v != wh::verdict::ok) {
        rp.deliver(
          kit::problem(errc::unauthenticated,
                       std::string{"the webhook signature was refused: "} + wh::to_string(v)));
        return;
      }
      if (provider_id.empty() || provider_id.size() > 255) {
        rp.deliver(kit::problem(
          errc::bad_request,
          s.scheme == "stripe"   ? "a Stripe event needs a string \"id\" of 1-255 characters"
          : s.scheme == "github" ? "a GitHub delivery needs an X-GitHub-Delivery header"
                                 : "the webhook-id header must be 1-255 characters"));
        return;
      }
      const auto inbound_id = protocol::new_uuid_v7();
      const auto event_id = protocol::new_uuid_v7();
      const auto payload
        = json{{"source", name}, {"provider_event_id", provider_id}, {"body", parsed}}.dump();
      kit::audited_tx<inbound_outcome>(
        self, call, "inbound.received",
        [inbound_id, event_id, name, provider_id, body, tp = call.origin.traceparent,
         payload](storage::pg_transaction& tx,
                  protocol::audit_change& change) -> caf::expected<inbound_outcome> {
          storage::webhook_repository repo{tx};
          auto stored = repo.insert_inbound(inbound_id, name, provider_id, event_id, body);
          if (!stored) {
            return std::move(stored.error());
          }
          change.resource_type = "inbound_event";
          change.resource_id = stored->first.id;
          change.after = json{
            {"source", name}, {"provider_event_id", provider_id}, {"duplicate", !stored->second}};
          if (stored->second) {
            auto event = repo.publish("inbound." + name, payload, event_id, tp);
            if (!event) {
              return std::move(event.error());
            }
          }
          return inbound_outcome{stored->first.id, !stored->second};
        },
        [self, rp](caf::expected<inbound_outcome> r) mutable {
          if (!r) {
            fail(rp, r.error());
            return;
          }
          if (!r->duplicate) {
            poke(self);
          }
          rp.deliver(ok(200, json{{"id", r->id}, {"duplicate", r->duplicate}}.dump()));
        });
    });
}

void list_inbound(service_pointer self, const protocol::auth_call& call, const json& in,
                  reply_promise rp) {
  const auto source = in.value("source", std::string{});
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  kit::read_tx<std::vector<storage::inbound_event_row>>(
    self, call.tenant_id,
    [source, cursor, limit](storage::pg_transaction& tx) {
      storage::webhook_repository repo{tx};
      return repo.inbound_events(source, cursor, limit + 1);
    },
    [rp, limit](caf::expected<std::vector<storage::inbound_event_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      rp.deliver(ok(200, kit::page(*rows, limit, inbound_json).dump()));
    });
}

protocol::users_actor::behavior_type webhooks_service(service_pointer self,
                                                      webhooks_service_options options) {
  self->state.options = std::move(options);
  self->system().registry().put(protocol::webhooks_key, self);
  return {
    [self](protocol::auth_atom, protocol::auth_call& call) -> caf::result<protocol::auth_reply> {
      static const std::map<std::string, kit::op_fn<service_pointer>> ops{
        {"publish", publish},
        {"event_types", list_event_types},
        {"create_event_type", create_event_type},
        {"endpoints", list_endpoints},
        {"endpoint", get_endpoint},
        {"create_endpoint", create_endpoint},
        {"update_endpoint", update_endpoint},
        {"delete_endpoint", delete_endpoint},
        {"rotate_secret", rotate_secret},
        {"deliveries", list_deliveries},
        {"delivery", get_delivery},
        {"retry_delivery", retry_delivery},
        {"put_source", put_source},
        {"inbound", receive},
        {"inbound_events", list_inbound},
      };
      return kit::serve_table(self, call, ops);
    },
  };
}

} // namespace

const std::vector<std::pair<std::string, std::string>>& builtin_event_types() {
  static const std::vector<std::pair<std::string, std::string>> types{
    {"user.created", "A user signed up; payload {\"user\"}"},
    {"user.updated", "A user's profile changed; payload {\"user\"}"},
    {"user.deleted", "A user was erased; payload {\"user\"}"},
    {"role.created", "A custom role was created; payload {\"role\"}"},
    {"role.updated", "A custom role changed; payload {\"role\"}"},
    {"role.deleted", "A custom role was deleted; payload {\"role\"}"},
    {"webhook.endpoint.disabled",
     "An endpoint was disabled (410 Gone or too many failed deliveries); payload "
     "{\"endpoint_id\",\"reason\"}"},
    {"inbound.*", "A verified inbound webhook of a source; payload "
                  "{\"source\",\"provider_event_id\",\"body\"}"},
  };
  return types;
}

protocol::users_actor spawn_webhooks_service(caf::local_actor* parent,
                                             webhooks_service_options options) {
  return parent->spawn(webhooks_service, std::move(options));
}

} // namespace troupe::actors

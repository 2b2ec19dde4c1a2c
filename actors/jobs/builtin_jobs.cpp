#include "actors/jobs/builtin_jobs.hpp"

#include "actors/audit/audit_service.hpp"
#include "actors/features/features.hpp"
#include "actors/webhooks/http_client.hpp"
#include "protocol/webhooks.hpp"
#include "storage/jobs.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <chrono>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::outbound_response)

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using features::invocation;
using features::outcome;
using promise = caf::typed_response_promise<outcome>;

// -- test handlers (jobs.test-handlers=true) --------------------------------------------------

// test.noop: succeeds at once. With {"once": true} it records its effect through the
// idempotent helper (features::once), which the crash test counts.
caf::behavior noop_actor(caf::event_based_actor* self) {
  return {
    [self](invocation& in) -> caf::result<outcome> {
      if (!in.params.value("once", false)) {
        return outcome::success();
      }
      auto rp = self->make_response_promise<outcome>();
      features::once(
        self, in, "noop",
        [](storage::pg_transaction&) -> caf::expected<json> {
          return json{{"effect", true}};
        },
        [rp](caf::expected<json> done) mutable {
          rp.deliver(done ? outcome::success(*done)
                          : outcome::failure("the effect could not be recorded"));
        });
      return rp;
    },
  };
}

// test.sleep {"ms"}: succeeds after ms milliseconds, or stops early when told to.
caf::behavior sleep_actor(caf::event_based_actor* self) {
  struct sleeping {
    promise rp;
    std::chrono::steady_clock::time_point until;
    std::shared_ptr<std::atomic<bool>> stop;
    std::int64_t ms = 0;
  };
  auto st = std::make_shared<sleeping>();
  return {
    [self, st](invocation& in) -> caf::result<outcome> {
      st->rp = self->make_response_promise<outcome>();
      st->ms = in.params.value("ms", std::int64_t{0});
      st->until = std::chrono::steady_clock::now() + std::chrono::milliseconds{st->ms};
      st->stop = in.stop;
      self->send(self, protocol::tick_atom_v);
      return st->rp;
    },
    [self, st](protocol::tick_atom) {
      if (st->stop->load()) {
        st->rp.deliver(outcome::failure("stopped before the end of its sleep"));
        return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= st->until) {
        st->rp.deliver(outcome::success(json{{"slept_ms", st->ms}}));
        return;
      }
      self->delayed_send(self,
                         std::min<std::chrono::steady_clock::duration>(
                           std::chrono::milliseconds{20}, st->until - now),
                         protocol::tick_atom_v);
    },
  };
}

// test.fail {"times"}: its first `times` attempts fail, the next one succeeds.
caf::behavior fail_actor(caf::event_based_actor*) {
  return {
    [](invocation& in) -> caf::result<outcome> {
      const auto times = in.params.value("times", 1);
      if (in.attempt <= times) {
        return outcome::failure("test.fail: attempt " + std::to_string(in.attempt) + " of "
                                + std::to_string(times) + " planned failures");
      }
      return outcome::success(json{{"attempts", in.attempt}});
    },
  };
}

// -- http.request ---------------------------------------------------------------------------

bool header_name_ok(const std::string& name) {
  static const std::string forbidden[]
    = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"};
  if (name.empty() || name.size() > 256) {
    return false;
  }
  std::string lower;
  for (char c : name) {
    const bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                       || std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
    if (!token) {
      return false;
    }
    lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return std::find(std::begin(forbidden), std::end(forbidden), lower) == std::end(forbidden);
}

caf::behavior http_request_actor(caf::event_based_actor* self,
                                 std::shared_ptr<http_client> client) {
  auto rp = std::make_shared<promise>();
  return {
    [self, client, rp](invocation& in) -> caf::result<outcome> {
      std::string error;
      auto target = protocol::webhooks::parse_url(in.params.value("url", std::string{}), error);
      if (!target) {
        return outcome::failure("bad url: " + error);
      }
      outbound_request request;
      request.target = std::move(*target);
      request.method = in.params.value("method", std::string{"GET"});
      request.user_agent = "Troupe-Jobs/1";
      if (auto headers = in.params.find("headers"); headers != in.params.end()) {
        for (const auto& [name, value] : headers->items()) {
          if (!header_name_ok(name) || !value.is_string()
              || value.get<std::string>().find_first_of("\r\n") != std::string::npos) {
            return outcome::failure("header " + name + " cannot be sent");
          }
          request.headers.emplace_back(name, value.get<std::string>());
        }
      }
      if (auto body = in.params.find("body"); body != in.params.end() && !body->is_null()) {
        request.body = body->is_string() ? body->get<std::string>() : body->dump();
      }
      if (!in.origin.traceparent.empty()) {
        request.headers.emplace_back("traceparent", in.origin.traceparent);
      }
      const auto left = in.deadline_ms - storage::unix_now_ms();
      request.timeout = std::chrono::milliseconds{std::max<std::int64_t>(1, left)};
      *rp = self->make_response_promise<outcome>();
      auto me = self->address();
      client->send(std::move(request), [me](outbound_response r) {
        if (auto actor = caf::actor_cast<caf::actor>(me)) {
          caf::anon_send(actor, std::move(r));
        }
      });
      return *rp;
    },
    [rp](outbound_response& r) {
      json result{{"status", r.status}, {"body", r.body}, {"duration_ms", r.duration_ms}};
      if (r.status >= 200 && r.status < 300) {
        rp->deliver(outcome::success(std::move(result)));
      } else if (r.status > 0) {
        rp->deliver(
          outcome::failure("HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 512)));
      } else {
        rp->deliver(outcome::failure(r.error.empty() ? std::string{"no response"} : r.error));
      }
    },
  };
}

// -- tenant.export ----------------------------------------------------------------------------

constexpr std::size_t export_rows = 10000; // per section

std::string ts(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

// One section of the export: at most export_rows + 1 rows of `table` (one more tells that it
// was cut), ordered by its key.
std::string section(const std::string& name, const std::string& fields, const std::string& table) {
  return "'" + name + "', (SELECT coalesce(json_agg(json_build_object(" + fields
         + ")), '[]') FROM (SELECT * FROM " + table + " ORDER BY 1, 2 LIMIT "
         + std::to_string(export_rows + 1) + ") t)";
}

// Everything but secrets: no password hashes, key hashes, TOTP or webhook secrets.
const storage::pg_statement& export_statement() {
  static const std::string sql
    = "SELECT json_build_object('format', 'troupe-export-1', 'exported_at', " + ts("now()")
      + ", 'tenant', (SELECT json_build_object('id', id, 'slug', slug, 'name', name) FROM tenants "
        "WHERE id = troupe_current_tenant()), "
      + section("users",
                "'id', id, 'email', email, 'display_name', display_name, 'roles', roles, "
                "'created_at', "
                  + ts("created_at") + ", 'updated_at', " + ts("updated_at"),
                "users")
      + ", "
      + section("roles",
                "'name', name, 'permissions', permissions, 'inherits', inherits, 'created_at', "
                  + ts("created_at"),
                "roles")
      + ", "
      + section("api_keys",
                "'id', id, 'name', name, 'prefix', prefix, 'permissions', permissions, "
                "'created_at', "
                  + ts("created_at") + ", 'expires_at', " + ts("expires_at") + ", 'revoked_at', "
                  + ts("revoked_at"),
                "api_keys")
      + ", "
      + section("webhook_endpoints",
                "'id', id, 'url', url, 'description', description, 'events', events, "
                "'ordered', ordered, 'disabled', disabled",
                "webhook_endpoints")
      + ", " + section("event_types", "'name', name, 'description', description", "event_types")
      + ", "
      + section("inbound_sources", "'name', name, 'scheme', scheme, 'tolerance_s', tolerance_s",
                "inbound_sources")
      + ", "
      + section("schedules",
                "'name', name, 'cron', cron, 'timezone', timezone, 'job', job, 'enabled', enabled",
                "schedules")
      + ", 'counts', json_build_object('events', (SELECT count(*) FROM events), 'jobs', (SELECT "
        "count(*) FROM jobs), 'audit_entries', (SELECT count(*) FROM audit_log)))::text";
  static const storage::pg_statement statement{"job_tenant_export", sql.c_str()};
  return statement;
}

caf::behavior export_actor(caf::event_based_actor* self) {
  return {
    [self](invocation& in) -> caf::result<outcome> {
      auto rp = self->make_response_promise<outcome>();
      features::transaction(
        self, in,
        [](storage::pg_transaction& tx) -> caf::expected<json> {
          auto rows = tx.execute(export_statement());
          if (!rows) {
            return std::move(rows.error());
          }
          auto doc = json::parse(rows->get(0, 0), nullptr, false);
          bool truncated = false;
          for (auto& [name, section] : doc.items()) {
            if (section.is_array() && section.size() > export_rows) {
              section.erase(section.begin() + static_cast<std::ptrdiff_t>(export_rows),
                            section.end());
              truncated = true;
            }
          }
          doc["truncated"] = truncated;
          return doc;
        },
        [rp](caf::expected<json> doc) mutable {
          rp.deliver(doc ? outcome::success(std::move(*doc))
                         : outcome::failure("the export could not be read"));
        });
      return rp;
    },
  };
}

// -- audit.prune ------------------------------------------------------------------------------

caf::behavior prune_actor(caf::event_based_actor* self, std::uint32_t retention_days) {
  return {
    [self, retention_days](invocation& in) -> caf::result<outcome> {
      if (retention_days == 0) {
        return outcome::success(json{{"pruned", 0},
                                     {"retention_days", 0},
                                     {"note", "audit.retention-days is 0: the "
                                              "audit log is kept forever"}});
      }
      auto pruner = self->system().registry().get<audit_pruner_actor>(audit_pruner_key);
      if (!pruner) {
        return outcome::failure("the audit pruner is not running");
      }
      auto rp = self->make_response_promise<outcome>();
      const auto left = std::max<std::int64_t>(1000, in.deadline_ms - storage::unix_now_ms());
      self->request(pruner, std::chrono::milliseconds{left}, protocol::prune_atom_v, in.tenant_id)
        .then(
          [rp, retention_days](std::uint64_t removed) mutable {
            rp.deliver(
              outcome::success(json{{"pruned", removed}, {"retention_days", retention_days}}));
          },
          [self, rp](caf::error& err) mutable {
            rp.deliver(outcome::failure("audit prune failed: " + self->system().render(err)));
          });
      return rp;
    },
  };
}

json object_schema(json properties, json required = json::array()) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

} // namespace

void add_builtin_jobs(features::catalog& catalog, const builtin_jobs_options& options) {
  using features::kind;
  auto client = options.client;
  catalog.add(
    {"http.request", kind::job, "",
     object_schema(
       {{"url",
         {{"type", "string"},
          {"minLength", 8},
          {"maxLength", 2048},
          {"pattern", "^[hH][tT][tT][pP][sS]?://"}}},
        {"method", {{"enum", {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}}}},
        {"headers",
         {{"type", "object"},
          {"maxProperties", 50},
          {"additionalProperties", {{"type", "string"}, {"maxLength", 8192}}}}},
        {"body", json::object()}},
       {"url"}),
     "Sends an HTTP request; succeeds on a 2xx answer", [client](caf::event_based_actor* self) {
       return http_request_actor(self, client);
     }});
  catalog.add({"tenant.export", kind::job, "tenant:admin", object_schema(json::object()),
               "Exports the tenant's users, roles, API keys (no secrets), webhook endpoints (no "
               "secrets), event types, inbound sources, schedules and counts as the job's result",
               export_actor});
  const auto retention = options.audit_retention_days;
  catalog.add({"audit.prune", kind::job, "tenant:admin", object_schema(json::object()),
               "Prunes the tenant's audit entries older than audit.retention-days (behind a "
               "signed checkpoint)",
               [retention](caf::event_based_actor* self) {
                 return prune_actor(self, retention);
               }});
  if (!options.test_handlers) {
    return;
  }
  catalog.add({"test.noop", kind::job, "", object_schema({{"once", {{"type", "boolean"}}}}),
               "Succeeds at once (with once=true: records its effect through features::once)",
               noop_actor, true});
  catalog.add(
    {"test.sleep", kind::job, "",
     object_schema({{"ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 86400000}}}}, {"ms"}),
     "Succeeds after ms milliseconds; stops early when cancelled or timed out", sleep_actor, true});
  catalog.add({"test.fail", kind::job, "",
               object_schema({{"times", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}}}),
               "Fails its first `times` attempts (default 1), then succeeds", fail_actor, true});
}

} // namespace troupe::actors

#include "actors/jobs/jobs_service.hpp"

#include "actors/auth/service_kit.hpp"
#include "actors/features/features.hpp"
#include "actors/jobs/dispatcher.hpp"
#include "protocol/cron.hpp"
#include "protocol/logging.hpp"
#include "protocol/zoneinfo.hpp"
#include "storage/jobs.hpp"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using kit::client_error;
using kit::fail;
using kit::ok;
using kit::reply_promise;
using protocol::errc;

struct jobs_state {
  static inline const char* name = "jobs_service";
  jobs_service_options options;
  std::shared_ptr<spdlog::logger> log;
};

using service_pointer = protocol::users_actor::stateful_pointer<jobs_state>;

// A 400 validation-failed with every violation, their pointers under `prefix`.
protocol::auth_reply violations_reply(const std::vector<std::pair<std::string, std::string>>& v,
                                      const std::string& prefix) {
  auto r = kit::problem(errc::validation_failed, {});
  for (const auto& [pointer, message] : v) {
    r.error_pointers.push_back(prefix + pointer);
    r.error_messages.push_back(message);
  }
  return r;
}

// Checks a job's type and payload against the registered handler; a reply if they are bad.
// A job type's own permission (tenant.export and audit.prune: tenant:admin) is needed, beyond
// jobs:write, to enqueue it or to schedule it.
std::optional<protocol::auth_reply> check_job(service_pointer self, const protocol::auth_call& call,
                                              const json& job, const std::string& prefix) {
  const auto type = job.at("type").get<std::string>();
  const auto* entry = self->state.options.catalog->find(features::kind::job, type);
  if (entry == nullptr) {
    return violations_reply({{"/type", "no job handler is registered for " + type
                                         + " (GET /v1/functions lists the job types)"}},
                            prefix);
  }
  const auto& permission = features::catalog::of(*entry).permission;
  if (!permission.empty() && !protocol::permits(call.who.permissions, permission)) {
    auto r = kit::problem(errc::forbidden, "the job type " + type + " needs " + permission);
    r.required_permission = permission;
    return r;
  }
  auto violations = features::catalog::check(*entry, job.value("payload", json::object()));
  if (!violations.empty()) {
    return violations_reply(violations, prefix + "/payload");
  }
  return std::nullopt;
}

json schedule_json(const storage::schedule_row& s) {
  auto job = json::parse(s.job, nullptr, false);
  return {{"name", s.name},
          {"cron", s.cron},
          {"timezone", s.timezone},
          {"job", job.is_discarded() ? json::object() : job},
          {"enabled", s.enabled},
          {"next_run_at", s.next_run_at ? json(*s.next_run_at) : json(nullptr)},
          {"last_run_at", s.last_run_at ? json(*s.last_run_at) : json(nullptr)},
          {"created_at", s.created_at},
          {"updated_at", s.updated_at}};
}

json job_change(const storage::job_row& j) {
  return {{"type", j.type}, {"state", j.state}, {"priority", j.priority}, {"attempt", j.attempt}};
}

// -- jobs -------------------------------------------------------------------------------------

storage::new_job job_of(const json& in, const protocol::auth_call& call) {
  storage::new_job job;
  job.type = in.at("type").get<std::string>();
  job.payload = in.value("payload", json::object()).dump();
  job.priority = in.value("priority", 5);
  job.max_attempts = in.value("max_attempts", 5);
  job.timeout_s = in.value("timeout_s", 300);
  if (in.contains("run_at_ms")) {
    job.run_at_ms = in.at("run_at_ms").get<std::int64_t>();
  }
  if (in.contains("unique_key")) {
    job.unique_key = in.at("unique_key").get<std::string>();
  }
  job.traceparent = call.origin.traceparent;
  return job;
}

void create_job(service_pointer self, const protocol::auth_call& call, const json& in,
                reply_promise rp) {
  if (auto bad = check_job(self, call, in, "")) {
    rp.deliver(std::move(*bad));
    return;
  }
  auto job = job_of(in, call);
  using created = std::pair<storage::job_row, bool>;
  kit::audited_tx<created>(
    self, call, "job.created",
    [job, token = self->state.options.token](
      storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<created> {
      storage::job_repository repo{tx};
      auto row = repo.enqueue(job);
      if (row && row->second && row->first.state == "available") {
        if (auto err = repo.notify_due(token)) {
          return err;
        }
      }
      if (row) {
        // A duplicate creates nothing: its entry names the unfinished job that was returned.
        change.resource_type = "job";
        change.resource_id = row->first.id;
        change.after = row->second ? job_change(row->first) : json{{"duplicate", true}};
      }
      return row;
    },
    [self, rp, tenant = call.tenant_id](caf::expected<created> row) mutable {
      if (!row) {
        fail(rp, row.error(), "another unfinished job holds this unique_key");
        return;
      }
      auto body = storage::job_json(row->first, false);
      if (!row->second) {
        body["duplicate"] = true;
        rp.deliver(ok(200, body.dump()));
        return;
      }
      if (row->first.state == "available") {
        poke_job_dispatcher(self->system(), tenant);
      }
      rp.deliver(ok(201, body.dump(), "/v1/jobs/" + row->first.id));
    });
}

// POST /v1/jobs/batch: every job checked first, then all enqueued in one audited transaction
// (one entry naming every job created).
void create_jobs(service_pointer self, const protocol::auth_call& call, const json& in,
                 reply_promise rp) {
  const auto& list = in.at("jobs");
  std::vector<storage::new_job> jobs;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (auto bad = check_job(self, call, list[i], "/jobs/" + std::to_string(i))) {
      rp.deliver(std::move(*bad));
      return;
    }
    jobs.push_back(job_of(list[i], call));
  }
  using created = std::vector<std::pair<storage::job_row, bool>>;
  kit::audited_tx<created>(
    self, call, "job.created",
    [jobs, token = self->state.options.token](
      storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<created> {
      storage::job_repository repo{tx};
      auto rows = repo.enqueue_many(jobs);
      if (rows) {
        for (const auto& [row, fresh] : *rows) {
          if (fresh && row.state == "available") {
            if (auto err = repo.notify_due(token)) {
              return err;
            }
            break;
          }
        }
      }
      if (rows) {
        json ids = json::array();
        std::size_t duplicates = 0;
        for (const auto& [row, fresh] : *rows) {
          if (fresh) {
            ids.push_back(row.id);
          } else {
            ++duplicates;
          }
        }
        change.resource_type = "job_batch";
        change.resource_id = rows->empty() ? std::string{} : rows->front().first.id;
        change.after = json{{"created", ids}, {"duplicates", duplicates}};
      }
      return rows;
    },
    [self, rp, tenant = call.tenant_id](caf::expected<created> rows) mutable {
      if (!rows) {
        fail(rp, rows.error(), "another unfinished job holds this unique_key");
        return;
      }
      json data = json::array();
      bool due = false;
      for (const auto& [row, fresh] : *rows) {
        auto body = storage::job_json(row, false);
        if (!fresh) {
          body["duplicate"] = true;
        }
        due = due || (fresh && row.state == "available");
        data.push_back(std::move(body));
      }
      if (due) {
        poke_job_dispatcher(self->system(), tenant);
      }
      rp.deliver(ok(201, json{{"data", std::move(data)}}.dump()));
    });
}

void get_job(service_pointer self, const protocol::auth_call& call, const json& in,
             reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  kit::read_tx<std::optional<storage::job_row>>(
    self, call.tenant_id,
    [id](storage::pg_transaction& tx) {
      storage::job_repository repo{tx};
      return repo.job(id);
    },
    [rp](caf::expected<std::optional<storage::job_row>> row) mutable {
      kit::deliver_found(
        rp, row, [](const storage::job_row& j) { return storage::job_json(j, true); },
        "no job has this id");
    });
}

void list_jobs(service_pointer self, const protocol::auth_call& call, const json& in,
               reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  const auto state = in.value("state", std::string{});
  const auto type = in.value("type", std::string{});
  kit::read_tx<std::vector<storage::job_row>>(
    self, call.tenant_id,
    [state, type, cursor, limit](storage::pg_transaction& tx) {
      storage::job_repository repo{tx};
      return repo.jobs(state, type, cursor, limit + 1);
    },
    [rp, limit](caf::expected<std::vector<storage::job_row>> rows) mutable {
      kit::deliver(rp, rows, 200, [limit](const std::vector<storage::job_row>& r) {
        return kit::page(r, limit,
                         [](const storage::job_row& j) { return storage::job_json(j, false); });
      });
    });
}

// cancel_job and retry_job: one audited change of a job's state.
void change_job(service_pointer self, const protocol::auth_call& call, const json& in,
                reply_promise rp, bool cancel) {
  const auto id = in.at("id").get<std::string>();
  kit::audited_tx<storage::job_row>(
    self, call, cancel ? "job.cancelled" : "job.retried",
    [id, cancel](storage::pg_transaction& tx,
                 protocol::audit_change& change) -> caf::expected<storage::job_row> {
      storage::job_repository repo{tx};
      auto before = repo.job(id);
      if (!before) {
        return std::move(before.error());
      }
      if (!*before) {
        return client_error(errc::not_found, "no job has this id");
      }
      auto after = cancel ? repo.cancel(id) : repo.retry(id);
      if (!after) {
        return std::move(after.error());
      }
      if (!*after) {
        return client_error(errc::not_found, "no job has this id");
      }
      change.resource_type = "job";
      change.resource_id = id;
      change.before = job_change(**before);
      change.after = job_change(**after);
      return std::move(**after);
    },
    [self, rp, cancel, tenant = call.tenant_id](caf::expected<storage::job_row> row) mutable {
      if (row && cancel && row->state == "running") {
        cancel_job_here(self->system(), row->id);
      } else if (row && !cancel) {
        poke_job_dispatcher(self->system(), tenant);
      }
      kit::deliver(rp, row, 200,
                   [](const storage::job_row& j) { return storage::job_json(j, false); });
    });
}

void cancel_job(service_pointer self, const protocol::auth_call& call, const json& in,
                reply_promise rp) {
  change_job(self, call, in, std::move(rp), true);
}

void retry_job(service_pointer self, const protocol::auth_call& call, const json& in,
               reply_promise rp) {
  change_job(self, call, in, std::move(rp), false);
}

// -- schedules --------------------------------------------------------------------------------

void put_schedule(service_pointer self, const protocol::auth_call& call, const json& in,
                  reply_promise rp) {
  const auto& job = in.at("job");
  if (auto bad = check_job(self, call, job, "/job")) {
    rp.deliver(std::move(*bad));
    return;
  }
  storage::schedule_fields f;
  f.name = in.at("name").get<std::string>();
  f.cron = in.at("cron").get<std::string>();
  f.timezone = in.at("timezone").get<std::string>();
  f.job = job.dump();
  f.enabled = in.value("enabled", true);
  std::string error;
  auto expr = protocol::cron::parse(f.cron, &error);
  auto zone = protocol::zoneinfo::cached(f.timezone, &error);
  if (!expr || !zone) {
    // The route checked both; a zone file removed since is our problem.
    fail(rp, caf::make_error(errc::internal, "schedule: " + error));
    return;
  }
  if (f.enabled) {
    if (auto next = protocol::cron::next(*expr, *zone, storage::unix_now_ms() / 1000)) {
      f.next_run_ms = *next * 1000;
    }
  }
  using put = std::pair<storage::schedule_row, std::optional<storage::schedule_row>>;
  kit::audited_tx<put>(
    self, call, "schedule.updated",
    [f](storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<put> {
      storage::job_repository repo{tx};
      auto row = repo.put_schedule(f);
      if (row) {
        change.resource_type = "schedule";
        change.resource_id = f.name;
        if (row->second) {
          change.before = schedule_json(*row->second);
        }
        change.after = schedule_json(row->first);
      }
      return row;
    },
    [rp](caf::expected<put> row) mutable {
      kit::deliver(rp, row, 200, [](const put& p) { return schedule_json(p.first); });
    });
}

void list_schedules(service_pointer self, const protocol::auth_call& call, const json& in,
                    reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  kit::read_tx<std::vector<storage::schedule_row>>(
    self, call.tenant_id,
    [cursor, limit](storage::pg_transaction& tx) {
      storage::job_repository repo{tx};
      return repo.schedules(cursor, limit + 1);
    },
    [rp, limit](caf::expected<std::vector<storage::schedule_row>> rows) mutable {
      kit::deliver(rp, rows, 200, [limit](const std::vector<storage::schedule_row>& r) {
        return kit::page(r, limit, schedule_json,
                         [](const storage::schedule_row& s) { return s.name; });
      });
    });
}

void delete_schedule(service_pointer self, const protocol::auth_call& call, const json& in,
                     reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  kit::audited_tx<bool>(
    self, call, "schedule.deleted",
    [name](storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<bool> {
      storage::job_repository repo{tx};
      auto row = repo.delete_schedule(name);
      if (!row) {
        return std::move(row.error());
      }
      if (!*row) {
        return client_error(errc::not_found, "no schedule has this name");
      }
      change.resource_type = "schedule";
      change.resource_id = name;
      change.before = schedule_json(**row);
      return true;
    },
    [rp](caf::expected<bool> done) mutable {
      kit::deliver(rp, done, 204, [](bool) { return json(nullptr); });
    });
}

// -- functions --------------------------------------------------------------------------------

json feature_json(const features::catalog::entry& e) {
  const auto& d = features::catalog::of(e);
  return {{"name", d.name},
          {"kind", d.kind == features::kind::function ? "function" : "job"},
          {"permission", d.permission.empty() ? json(nullptr) : json(d.permission)},
          {"description", d.description},
          {"schema", d.schema}};
}

void list_functions(service_pointer self, const protocol::auth_call&, const json&,
                    reply_promise rp) {
  const auto& catalog = *self->state.options.catalog;
  json data = json::array();
  for (const auto* e : catalog.list(features::kind::function)) {
    data.push_back(feature_json(*e));
  }
  json jobs = json::array();
  for (const auto* e : catalog.list(features::kind::job)) {
    jobs.push_back(feature_json(*e));
  }
  rp.deliver(ok(200, json{{"data", data}, {"next_cursor", nullptr}, {"job_types", jobs}}.dump()));
}

void invoke(service_pointer self, const protocol::auth_call& call, const json& in,
            reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  const auto* entry = self->state.options.catalog->find(features::kind::function, name);
  if (entry == nullptr) {
    rp.deliver(kit::problem(errc::not_found, "no function is registered as " + name));
    return;
  }
  const auto& def = features::catalog::of(*entry);
  if (!def.permission.empty() && !protocol::permits(call.who.permissions, def.permission)) {
    fail(rp,
         kit::missing_permission(def.permission, "calling " + name + " needs " + def.permission));
    return;
  }
  const auto& params = in.at("params");
  if (auto violations = features::catalog::check(*entry, params); !violations.empty()) {
    rp.deliver(violations_reply(violations, ""));
    return;
  }
  features::invocation call_in;
  call_in.name = name;
  call_in.kind = features::kind::function;
  call_in.tenant_id = call.tenant_id;
  call_in.caller = call.who;
  call_in.origin = call.origin;
  call_in.params = params;
  const auto timeout = self->state.options.function_timeout;
  call_in.deadline_ms = storage::unix_now_ms() + timeout.count() * 1000;
  auto feature = features::spawn_feature(self, def.actor);
  auto log = self->state.log;
  self->request(feature, timeout, std::move(call_in))
    .then(
      [self, rp, feature, name, log](features::outcome& o) mutable {
        self->send_exit(feature, caf::exit_reason::user_shutdown);
        if (o.ok) {
          rp.deliver(ok(
            200, json{{"result", o.result}}.dump(-1, ' ', false, json::error_handler_t::replace)));
          return;
        }
        if (!o.violations.empty()) {
          rp.deliver(violations_reply(o.violations, ""));
          return;
        }
        const auto status = protocol::info(o.code).status;
        if (status >= 500 || o.code == errc::internal) {
          log->error(
            protocol::event("function failed").add("function", name).add("error", o.error).str());
          rp.deliver(caf::make_error(errc::internal, "function " + name + " failed"));
          return;
        }
        rp.deliver(kit::problem(o.code, o.error));
      },
      [self, rp, feature, name, log](caf::error& err) mutable {
        self->send_exit(feature, caf::exit_reason::user_shutdown);
        log->error(protocol::event("function failed")
                     .add("function", name)
                     .add("error", self->system().render(err))
                     .str());
        rp.deliver(caf::make_error(errc::internal, "function " + name + " failed"));
      });
}

protocol::users_actor::behavior_type jobs_service(service_pointer self,
                                                  jobs_service_options options) {
  self->state.options = std::move(options);
  self->state.log = protocol::make_logger("jobs");
  return {
    [self](protocol::auth_atom, protocol::auth_call& call) -> caf::result<protocol::auth_reply> {
      static const std::map<std::string, kit::op_fn<service_pointer>> ops{
        {"create_job", create_job},
        {"create_jobs", create_jobs},
        {"job", get_job},
        {"jobs", list_jobs},
        {"cancel_job", cancel_job},
        {"retry_job", retry_job},
        {"put_schedule", put_schedule},
        {"schedules", list_schedules},
        {"delete_schedule", delete_schedule},
        {"functions", list_functions},
        {"invoke", invoke},
      };
      return kit::serve_table(self, call, ops);
    },
  };
}

} // namespace

protocol::users_actor spawn_jobs_service(caf::local_actor* parent, jobs_service_options options) {
  return parent->spawn(jobs_service, std::move(options));
}

} // namespace troupe::actors

#include "http/routes/jobs.hpp"

#include "actors/jobs/jobs_service.hpp"
#include "http/body.hpp"
#include "http/query.hpp"
#include "http/routes/auth.hpp"
#include "protocol/cron.hpp"
#include "protocol/jobs.hpp"
#include "protocol/zoneinfo.hpp"

#include <nlohmann/json.hpp>

#include <chrono>

namespace troupe::http::routes {

namespace {

using json = nlohmann::json;
using protocol::errc;

constexpr std::int64_t max_delay_s = 366LL * 24 * 3600;
constexpr std::size_t max_batch = 1000; // jobs per POST /v1/jobs/batch

void call_jobs(const services& svc, std::string op, const request& req, const request_context& ctx,
               const reply_fn& reply, const json& input, bool paged = false) {
  call_service(*svc.system, actors::jobs_key, std::move(op), req, ctx, reply,
               input.dump(-1, ' ', false, json::error_handler_t::replace), paged);
}

// An integer member in [min, max], or `fallback` when absent.
void integer_field(validator& v, const json& body, const char* key, const std::string& base,
                   std::int64_t min, std::int64_t max, json& out) {
  auto f = body.find(key);
  if (f == body.end()) {
    return;
  }
  if (!f->is_number_integer() || f->get<std::int64_t>() < min || f->get<std::int64_t>() > max) {
    v.error(base + "/" + key,
            "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return;
  }
  out[key] = f->get<std::int64_t>();
}

// Milliseconds of an RFC 3339 date-time (its fraction kept to the millisecond).
std::optional<std::int64_t> rfc3339_ms(const std::string& text) {
  auto s = rfc3339_seconds(text);
  if (!s) {
    return std::nullopt;
  }
  std::int64_t ms = 0;
  if (text.size() > 20 && text[19] == '.') {
    int digits = 0;
    for (std::size_t i = 20;
         i < text.size() && digits < 3 && std::isdigit(static_cast<unsigned char>(text[i]));
         ++i, ++digits) {
      ms = ms * 10 + (text[i] - '0');
    }
    for (; digits < 3; ++digits) {
      ms *= 10;
    }
  }
  return *s * 1000 + ms;
}

// The fields every job has (POST /v1/jobs, and a schedule's `job`), under `base`.
void job_fields(validator& v, const json& body, const std::string& base, json& out) {
  if (auto type = v.text(body, "type", base + "/type", 1, 100, true)) {
    if (protocol::jobs::valid_type(*type)) {
      out["type"] = *type;
    } else {
      v.error(base + "/type", "must match ^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$");
    }
  }
  out["payload"] = json::object();
  if (auto payload = body.find("payload"); payload != body.end()) {
    if (!payload->is_object()) {
      v.error(base + "/payload", "must be an object");
    } else {
      out["payload"] = *payload;
    }
  }
  integer_field(v, body, "priority", base, 0, 9, out);
  integer_field(v, body, "max_attempts", base, 1, 100, out);
  integer_field(v, body, "timeout_s", base, 1, 86400, out);
  if (body.contains("unique_key")) {
    if (body.at("unique_key").is_null()) {
      // null: no key
    } else if (auto key = v.text(body, "unique_key", base + "/unique_key", 1, 255, false)) {
      out["unique_key"] = *key;
    }
  }
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// One job of POST /v1/jobs (or of a batch, under `base`), validated.
json new_job_fields(validator& v, const json& body, const std::string& base) {
  v.only(
    body,
    {"type", "payload", "run_at", "delay_s", "priority", "max_attempts", "timeout_s", "unique_key"},
    base);
  json input = json::object();
  job_fields(v, body, base, input);
  const bool has_run_at = body.contains("run_at") && !body.at("run_at").is_null();
  const bool has_delay = body.contains("delay_s") && !body.at("delay_s").is_null();
  if (has_run_at && has_delay) {
    v.error(base + "/delay_s", "give run_at or delay_s, not both");
  } else if (has_run_at) {
    const auto& at = body.at("run_at");
    auto ms = at.is_string() ? rfc3339_ms(at.get<std::string>()) : std::nullopt;
    if (!ms) {
      v.error(base + "/run_at", "must be an RFC 3339 date-time such as 2026-01-02T03:04:05.678Z");
    } else if (*ms > now_ms() + max_delay_s * 1000) {
      v.error(base + "/run_at", "must be within a year from now");
    } else {
      input["run_at_ms"] = *ms;
    }
  } else if (has_delay) {
    json delay = json::object();
    integer_field(v, body, "delay_s", base, 0, max_delay_s, delay);
    if (delay.contains("delay_s")) {
      input["run_at_ms"] = now_ms() + delay["delay_s"].get<std::int64_t>() * 1000;
    }
  }
  return input;
}

} // namespace

handler_fn create_job(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    auto input = new_job_fields(v, *body, "");
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_jobs(svc, "create_job", req, ctx, reply, input);
  };
}

handler_fn create_jobs(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    v.only(*body, {"jobs"}, "");
    json input{{"jobs", json::array()}};
    auto jobs = body->find("jobs");
    if (jobs == body->end() || !jobs->is_array() || jobs->empty() || jobs->size() > max_batch) {
      v.error("/jobs", "must be an array of 1 to " + std::to_string(max_batch) + " jobs");
    } else {
      for (std::size_t i = 0; i < jobs->size(); ++i) {
        const auto base = "/jobs/" + std::to_string(i);
        if (!(*jobs)[i].is_object()) {
          v.error(base, "must be an object");
          continue;
        }
        input["jobs"].push_back(new_job_fields(v, (*jobs)[i], base));
      }
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_jobs(svc, "create_jobs", req, ctx, reply, input);
  };
}

handler_fn list_jobs(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto page = page_query(req, ctx, reply, {"state", "type"});
    if (!page) {
      return;
    }
    static const std::set<std::string> states{"scheduled", "available", "running",  "retrying",
                                              "succeeded", "discarded", "cancelled"};
    if (page->contains("state") && states.count(page->at("state").get<std::string>()) == 0) {
      reply(validation_problem(req, ctx, {},
                               {{"/query/state", "must be scheduled, available, running, "
                                                 "retrying, succeeded, discarded or cancelled"}}));
      return;
    }
    if (page->contains("type")
        && !protocol::jobs::valid_type(page->at("type").get<std::string>())) {
      reply(validation_problem(
        req, ctx, {}, {{"/query/type", "must match ^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$"}}));
      return;
    }
    call_jobs(svc, "jobs", req, ctx, reply, *page, true);
  };
}

handler_fn get_job(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no job has this id")) {
      call_jobs(svc, "job", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn cancel_job(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no job has this id")) {
      call_jobs(svc, "cancel_job", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn retry_job(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto id = uuid_param(req, ctx, reply, "id", "no job has this id")) {
      call_jobs(svc, "retry_job", req, ctx, reply, json{{"id", *id}});
    }
  };
}

handler_fn put_schedule(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    auto body = json_object_body(req, ctx, reply);
    if (!body) {
      return;
    }
    validator v;
    const auto& name = ctx.param("name");
    json input{{"name", name}};
    if (!protocol::jobs::valid_schedule_name(name)) {
      v.error("/name", "a schedule name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$");
    }
    v.only(*body, {"cron", "timezone", "job", "enabled"}, "");
    if (auto cron = v.text(*body, "cron", "/cron", 1, 256, true)) {
      std::string error;
      if (protocol::cron::parse(*cron, &error)) {
        input["cron"] = *cron;
      } else {
        v.error("/cron", error);
      }
    }
    input["timezone"] = "UTC";
    if (body->contains("timezone")) {
      if (auto zone = v.text(*body, "timezone", "/timezone", 1, 255, false)) {
        std::string error;
        if (protocol::zoneinfo::cached(*zone, &error)) {
          input["timezone"] = *zone;
        } else {
          v.error("/timezone", "must be an IANA time zone such as Europe/Berlin (" + error + ")");
        }
      }
    }
    auto job = body->find("job");
    if (job == body->end() || !job->is_object()) {
      v.error("/job", "must be an object: {\"type\",\"payload\",\"priority\",\"max_attempts\","
                      "\"timeout_s\",\"unique_key\"}");
    } else {
      v.only(*job, {"type", "payload", "priority", "max_attempts", "timeout_s", "unique_key"},
             "/job");
      json fields = json::object();
      job_fields(v, *job, "/job", fields);
      input["job"] = fields;
    }
    if (auto enabled = body->find("enabled"); enabled != body->end()) {
      if (!enabled->is_boolean()) {
        v.error("/enabled", "must be true or false");
      } else {
        input["enabled"] = enabled->get<bool>();
      }
    }
    if (v.failed()) {
      reply(v.problem(req, ctx));
      return;
    }
    call_jobs(svc, "put_schedule", req, ctx, reply, input);
  };
}

handler_fn list_schedules(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (auto page = page_query(req, ctx, reply, {}, false)) {
      call_jobs(svc, "schedules", req, ctx, reply, *page, true);
    }
  };
}

handler_fn delete_schedule(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    const auto& name = ctx.param("name");
    if (!protocol::jobs::valid_schedule_name(name)) {
      reply(problem_response(errc::not_found, req, ctx, "no schedule has this name"));
      return;
    }
    call_jobs(svc, "delete_schedule", req, ctx, reply, json{{"name", name}});
  };
}

handler_fn list_functions(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    call_jobs(svc, "functions", req, ctx, reply, json::object());
  };
}

handler_fn invoke_function(const services& svc) {
  return [svc](const request& req, const request_context& ctx, const reply_fn& reply) {
    const auto& name = ctx.param("name");
    if (!protocol::jobs::valid_type(name)) {
      reply(problem_response(errc::not_found, req, ctx, "no function is registered as " + name));
      return;
    }
    json params = json::object();
    if (!req.body.empty()) {
      auto body = json_object_body(req, ctx, reply);
      if (!body) {
        return;
      }
      params = std::move(*body);
    }
    call_jobs(svc, "invoke", req, ctx, reply, json{{"name", name}, {"params", params}});
  };
}

} // namespace troupe::http::routes

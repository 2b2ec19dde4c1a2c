#include "http/routes.hpp"

#include "http/routes/admin.hpp"
#include "http/routes/audit.hpp"
#include "http/routes/auth.hpp"
#include "http/routes/jobs.hpp"
#include "http/routes/platform.hpp"
#include "http/routes/usage.hpp"
#include "http/routes/users.hpp"
#include "http/routes/webhooks.hpp"

namespace troupe::http {

std::shared_ptr<router> make_router(const services& svc) {
  auto r = std::make_shared<router>();
  // Platform (API.md "Platform"). Keep docs/openapi.json in step with this table: a unit
  // test compares them.
  r->add({verb::get, "/healthz", routes::healthz(), "liveness"});
  r->add({verb::get, "/readyz", routes::readyz(svc), "readiness"});
  r->add({verb::get, "/metrics", routes::metrics(svc), "Prometheus metrics"});
  r->add({verb::get, "/openapi.json", routes::openapi(), "this API's OpenAPI document"});
  r->add({verb::get, "/problems/{code}", routes::problem_page(), "problem type documentation"});
  // Platform administration (API.md "Platform"): admin.token only.
  auto admin = [&r, &svc](verb method, std::string path, handler_fn handler, std::string summary) {
    r->add({method, std::move(path), routes::admin_only(svc, std::move(handler)),
            std::move(summary), "admin"});
  };
  admin(verb::post, "/admin/v1/tenants", routes::create_tenant(svc),
        "create a tenant and its owner");
  admin(verb::get, "/admin/v1/tenants", routes::list_tenants(svc), "list tenants");
  admin(verb::get, "/admin/v1/tenants/{tenant}", routes::get_tenant(svc), "a tenant by id or slug");
  admin(verb::patch, "/admin/v1/tenants/{tenant}", routes::update_tenant(svc), "change a tenant");
  admin(verb::del, "/admin/v1/tenants/{tenant}", routes::delete_tenant(svc),
        "delete a tenant and purge its data");
  r->add(
    {verb::get, "/.well-known/jwks.json", routes::jwks(svc), "public signing keys (RFC 7517)"});
  // Tenant API: each route declares its requirement, and guarded() enforces it.
  auto tenant = [&r, &svc](verb method, std::string path, std::string permission,
                           handler_fn handler, std::string summary) {
    r->add({method, std::move(path), routes::guarded(svc, permission, std::move(handler)),
            std::move(summary), std::move(permission)});
  };
  tenant(verb::post, "/v1/auth/signup", "public", routes::signup(svc), "create an account");
  tenant(verb::post, "/v1/auth/login", "public", routes::login(svc), "log in with a password");
  tenant(verb::post, "/v1/auth/mfa/verify", "public", routes::mfa_verify(svc),
         "second step of a login with MFA");
  tenant(verb::post, "/v1/auth/refresh", "public", routes::refresh(svc), "rotate a refresh token");
  tenant(verb::post, "/v1/auth/logout", "self", routes::logout(svc), "end this session");
  tenant(verb::get, "/v1/auth/sessions", "self", routes::list_sessions(svc), "own sessions");
  tenant(verb::del, "/v1/auth/sessions/{id}", "self", routes::revoke_session(svc),
         "revoke one of one's sessions");
  tenant(verb::post, "/v1/auth/password", "self", routes::change_password(svc),
         "change one's password");
  tenant(verb::post, "/v1/auth/mfa/totp/enroll", "self", routes::totp_enroll(svc),
         "start TOTP enrollment");
  tenant(verb::post, "/v1/auth/mfa/totp/activate", "self", routes::totp_activate(svc),
         "turn TOTP MFA on");
  tenant(verb::del, "/v1/auth/mfa/totp", "self", routes::totp_disable(svc), "turn TOTP MFA off");
  tenant(verb::post, "/v1/api-keys", "api_keys:write", routes::create_api_key(svc),
         "create an API key");
  tenant(verb::get, "/v1/api-keys", "api_keys:write", routes::list_api_keys(svc),
         "the tenant's API keys");
  tenant(verb::del, "/v1/api-keys/{id}", "api_keys:write", routes::revoke_api_key(svc),
         "revoke an API key");
  tenant(verb::get, "/v1/users/me", "self", routes::users_me(svc),
         "the caller and their permissions");
  tenant(verb::get, "/v1/users", "users:read", routes::list_users(svc), "the tenant's users");
  tenant(verb::get, "/v1/users/{id}", "users:read", routes::get_user(svc), "a user");
  tenant(verb::patch, "/v1/users/{id}", "self|users:write", routes::update_user(svc),
         "change a user's display name");
  tenant(verb::del, "/v1/users/{id}", "users:write", routes::delete_user(svc), "erase a user");
  tenant(verb::put, "/v1/users/{id}/roles", "roles:write", routes::set_user_roles(svc),
         "replace a user's roles");
  tenant(verb::get, "/v1/roles", "roles:read", routes::list_roles(svc),
         "built-in and custom roles");
  tenant(verb::post, "/v1/roles", "roles:write", routes::create_role(svc), "create a custom role");
  tenant(verb::get, "/v1/roles/{name}", "roles:read", routes::get_role(svc), "a role");
  tenant(verb::patch, "/v1/roles/{name}", "roles:write", routes::update_role(svc),
         "change a custom role");
  tenant(verb::del, "/v1/roles/{name}", "roles:write", routes::delete_role(svc),
         "delete a custom role");
  tenant(verb::get, "/v1/audit", "audit:read", routes::list_audit(svc),
         "the tenant's audit entries, newest first");
  tenant(verb::get, "/v1/audit/verify", "audit:read", routes::verify_audit(svc),
         "verify the tenant's audit hash chain");
  tenant(verb::get, "/v1/audit/export", "audit:read", routes::export_audit(svc),
         "every audit entry, oldest first, as streamed NDJSON");
  tenant(verb::get, "/v1/usage", "tenant:admin", routes::usage(svc),
         "this month's requests, the quota and the stored bytes");
  // Events and webhooks (API.md "Events and outbound webhooks", "Inbound webhooks").
  tenant(verb::post, "/v1/events", "events:publish", routes::publish_event(svc),
         "publish an event");
  tenant(verb::get, "/v1/webhooks/event-types", "webhooks:read", routes::list_event_types(svc),
         "built-in and registered event types");
  tenant(verb::post, "/v1/webhooks/event-types", "webhooks:write", routes::create_event_type(svc),
         "register an event type");
  tenant(verb::get, "/v1/webhooks/endpoints", "webhooks:read", routes::list_endpoints(svc),
         "webhook endpoints");
  tenant(verb::post, "/v1/webhooks/endpoints", "webhooks:write", routes::create_endpoint(svc),
         "create a webhook endpoint");
  tenant(verb::get, "/v1/webhooks/endpoints/{id}", "webhooks:read", routes::get_endpoint(svc),
         "a webhook endpoint");
  tenant(verb::patch, "/v1/webhooks/endpoints/{id}", "webhooks:write", routes::update_endpoint(svc),
         "change a webhook endpoint");
  tenant(verb::del, "/v1/webhooks/endpoints/{id}", "webhooks:write", routes::delete_endpoint(svc),
         "delete a webhook endpoint");
  tenant(verb::post, "/v1/webhooks/endpoints/{id}/rotate-secret", "webhooks:write",
         routes::rotate_endpoint_secret(svc), "rotate an endpoint's signing secret");
  tenant(verb::get, "/v1/webhooks/endpoints/{id}/deliveries", "webhooks:read",
         routes::list_deliveries(svc), "an endpoint's deliveries");
  tenant(verb::get, "/v1/webhooks/deliveries/{id}", "webhooks:read", routes::get_delivery(svc),
         "a delivery and its attempts");
  tenant(verb::post, "/v1/webhooks/deliveries/{id}/retry", "webhooks:write",
         routes::retry_delivery(svc), "attempt a delivery again now");
  tenant(verb::put, "/v1/inbound/sources/{source}", "tenant:admin", routes::put_inbound_source(svc),
         "configure an inbound webhook source");
  tenant(verb::get, "/v1/inbound/events", "webhooks:read", routes::list_inbound_events(svc),
         "received inbound webhooks");
  tenant(verb::post, "/v1/inbound/{source}", "public", routes::receive_inbound(svc),
         "receive a signed inbound webhook");
  // Jobs, schedules and functions (API.md "Jobs and schedules", "Functions").
  tenant(verb::post, "/v1/jobs", "jobs:write", routes::create_job(svc), "enqueue a job");
  tenant(verb::post, "/v1/jobs/batch", "jobs:write", routes::create_jobs(svc),
         "enqueue up to 1000 jobs at once");
  tenant(verb::get, "/v1/jobs", "jobs:read", routes::list_jobs(svc), "jobs, newest first");
  tenant(verb::get, "/v1/jobs/{id}", "jobs:read", routes::get_job(svc), "a job with its attempts");
  tenant(verb::post, "/v1/jobs/{id}/cancel", "jobs:write", routes::cancel_job(svc),
         "cancel a job (a running one is told to stop)");
  tenant(verb::post, "/v1/jobs/{id}/retry", "jobs:write", routes::retry_job(svc),
         "make a discarded or cancelled job available again");
  tenant(verb::get, "/v1/schedules", "jobs:read", routes::list_schedules(svc), "cron schedules");
  tenant(verb::put, "/v1/schedules/{name}", "jobs:write", routes::put_schedule(svc),
         "create or replace a cron schedule");
  tenant(verb::del, "/v1/schedules/{name}", "jobs:write", routes::delete_schedule(svc),
         "delete a cron schedule");
  tenant(verb::get, "/v1/functions", "functions:invoke", routes::list_functions(svc),
         "registered functions and job types");
  tenant(verb::post, "/v1/functions/{name}", "functions:invoke", routes::invoke_function(svc),
         "call a registered function");
  return r;
}

} // namespace troupe::http

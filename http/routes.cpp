#include "http/routes.hpp"

#include "http/routes/admin.hpp"
#include "http/routes/audit.hpp"
#include "http/routes/platform.hpp"

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
  using routes::admin_only;
  r->add({verb::post, "/admin/v1/tenants", admin_only(svc, routes::create_tenant(svc)),
          "create a tenant and its owner"});
  r->add(
    {verb::get, "/admin/v1/tenants", admin_only(svc, routes::list_tenants(svc)), "list tenants"});
  r->add({verb::get, "/admin/v1/tenants/{tenant}", admin_only(svc, routes::get_tenant(svc)),
          "a tenant by id or slug"});
  r->add({verb::patch, "/admin/v1/tenants/{tenant}", admin_only(svc, routes::update_tenant(svc)),
          "change a tenant"});
  r->add({verb::del, "/admin/v1/tenants/{tenant}", admin_only(svc, routes::delete_tenant(svc)),
          "delete a tenant and purge its data"});
  // Tenant API (API.md "Audit log"). Until authentication lands, the platform admin token
  // with X-Tenant is the only credential (actor type admin); then audit:read.
  r->add({verb::get, "/v1/audit", admin_only(svc, routes::list_audit(svc)),
          "the tenant's audit entries, newest first"});
  r->add({verb::get, "/v1/audit/verify", admin_only(svc, routes::verify_audit(svc)),
          "verify the tenant's audit hash chain"});
  r->add({verb::get, "/v1/audit/export", admin_only(svc, routes::export_audit(svc)),
          "every audit entry, oldest first, as streamed NDJSON"});
  return r;
}

} // namespace troupe::http

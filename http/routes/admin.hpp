#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"

namespace troupe::http::routes {

/// The form in which `services::admin_token_digest` keeps admin.token (SHA-256, 32 bytes).
std::string admin_token_digest(std::string_view token);

/// Wraps `inner` so that it runs only with `Authorization: Bearer <admin.token>` (compared in
/// constant time); anything else is 401 `unauthenticated` with `WWW-Authenticate: Bearer`.
handler_fn admin_only(const services& svc, handler_fn inner);

/// POST /admin/v1/tenants
handler_fn create_tenant(const services& svc);
/// GET /admin/v1/tenants
handler_fn list_tenants(const services& svc);
/// GET /admin/v1/tenants/{tenant}
handler_fn get_tenant(const services& svc);
/// PATCH /admin/v1/tenants/{tenant}
handler_fn update_tenant(const services& svc);
/// DELETE /admin/v1/tenants/{tenant}
handler_fn delete_tenant(const services& svc);

} // namespace troupe::http::routes

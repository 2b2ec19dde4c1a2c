#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"

namespace troupe::http::routes {

/// GET /v1/users
handler_fn list_users(const services& svc);
/// GET /v1/users/{id}
handler_fn get_user(const services& svc);
/// PATCH /v1/users/{id}
handler_fn update_user(const services& svc);
/// DELETE /v1/users/{id}
handler_fn delete_user(const services& svc);
/// PUT /v1/users/{id}/roles
handler_fn set_user_roles(const services& svc);
/// GET /v1/roles
handler_fn list_roles(const services& svc);
/// POST /v1/roles
handler_fn create_role(const services& svc);
/// GET /v1/roles/{name}
handler_fn get_role(const services& svc);
/// PATCH /v1/roles/{name}
handler_fn update_role(const services& svc);
/// DELETE /v1/roles/{name}
handler_fn delete_role(const services& svc);

} // namespace troupe::http::routes

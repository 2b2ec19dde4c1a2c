#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"

namespace troupe::http::routes {

/// GET /v1/usage: the tenant's requests this month, its quota and its stored bytes.
handler_fn usage(const services& svc);

} // namespace troupe::http::routes

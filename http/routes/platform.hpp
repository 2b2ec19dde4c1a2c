#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"

namespace troupe::http::routes {

/// GET /healthz: 200 while the process serves (answered on the io thread).
handler_fn healthz();

/// GET /readyz: asks the node supervisor whether every part runs; 503 when one does not.
handler_fn readyz(const services& svc);

/// GET /metrics: the Prometheus text rendered by the `metrics` actor.
handler_fn metrics(const services& svc);

/// GET /openapi.json: the embedded OpenAPI document.
handler_fn openapi();

/// GET /problems/{code}: a short human page (or JSON, if asked) for one problem code.
handler_fn problem_page();

} // namespace troupe::http::routes

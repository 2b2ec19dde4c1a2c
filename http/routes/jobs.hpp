#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"

namespace troupe::http::routes {

/// POST /v1/jobs
handler_fn create_job(const services& svc);
/// POST /v1/jobs/batch (up to 1000 jobs in one transaction)
handler_fn create_jobs(const services& svc);
/// GET /v1/jobs
handler_fn list_jobs(const services& svc);
/// GET /v1/jobs/{id}
handler_fn get_job(const services& svc);
/// POST /v1/jobs/{id}/cancel
handler_fn cancel_job(const services& svc);
/// POST /v1/jobs/{id}/retry
handler_fn retry_job(const services& svc);
/// PUT /v1/schedules/{name}
handler_fn put_schedule(const services& svc);
/// GET /v1/schedules
handler_fn list_schedules(const services& svc);
/// DELETE /v1/schedules/{name}
handler_fn delete_schedule(const services& svc);
/// GET /v1/functions
handler_fn list_functions(const services& svc);
/// POST /v1/functions/{name}
handler_fn invoke_function(const services& svc);

} // namespace troupe::http::routes

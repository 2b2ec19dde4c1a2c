#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"
#include "protocol/audit.hpp"

namespace troupe::http::routes {

/// The audit origin of a request made with the platform admin token (actor type `admin`):
/// the peer address, User-Agent and request id.
protocol::audit_origin admin_origin(const request& req, const request_context& ctx);

/// GET /v1/audit: a page of the tenant's entries, newest first, filtered.
handler_fn list_audit(const services& svc);
/// GET /v1/audit/verify: the chain checked end to end.
handler_fn verify_audit(const services& svc);
/// GET /v1/audit/export: every entry, oldest first, as NDJSON streamed in bounded memory.
handler_fn export_audit(const services& svc);

} // namespace troupe::http::routes

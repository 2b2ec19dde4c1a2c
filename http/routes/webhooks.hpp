#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"

namespace troupe::http::routes {

/// POST /v1/events
handler_fn publish_event(const services& svc);
/// GET /v1/webhooks/event-types
handler_fn list_event_types(const services& svc);
/// POST /v1/webhooks/event-types
handler_fn create_event_type(const services& svc);
/// GET /v1/webhooks/endpoints
handler_fn list_endpoints(const services& svc);
/// POST /v1/webhooks/endpoints
handler_fn create_endpoint(const services& svc);
/// GET /v1/webhooks/endpoints/{id}
handler_fn get_endpoint(const services& svc);
/// PATCH /v1/webhooks/endpoints/{id}
handler_fn update_endpoint(const services& svc);
/// DELETE /v1/webhooks/endpoints/{id}
handler_fn delete_endpoint(const services& svc);
/// POST /v1/webhooks/endpoints/{id}/rotate-secret
handler_fn rotate_endpoint_secret(const services& svc);
/// GET /v1/webhooks/endpoints/{id}/deliveries
handler_fn list_deliveries(const services& svc);
/// GET /v1/webhooks/deliveries/{id}
handler_fn get_delivery(const services& svc);
/// POST /v1/webhooks/deliveries/{id}/retry
handler_fn retry_delivery(const services& svc);
/// PUT /v1/inbound/sources/{source}
handler_fn put_inbound_source(const services& svc);
/// POST /v1/inbound/{source} (public: the signature authenticates)
handler_fn receive_inbound(const services& svc);
/// GET /v1/inbound/events
handler_fn list_inbound_events(const services& svc);

} // namespace troupe::http::routes

#pragma once

#include "protocol/auth.hpp"

#include <caf/fwd.hpp>

#include <string>

namespace troupe::actors {

struct webhooks_service_options {
  std::string seal_key; ///< seals endpoint and inbound source secrets (32 bytes)
  bool allow_private_targets = false;
};

/// Spawns the events and webhooks service (protocol::users_actor interface, registered as
/// `protocol::webhooks_key`): publishing events, event types, endpoints, deliveries and
/// manual retries, inbound sources and verified inbound events (docs/webhooks.md).
/// Stateless: reads on the pool, writes as audited work through the directory; after a
/// write that makes deliveries due it pokes the node's webhook dispatcher.
protocol::users_actor spawn_webhooks_service(caf::local_actor* parent,
                                             webhooks_service_options options);

/// Built-in event types (name, description), as listed by GET /v1/webhooks/event-types.
const std::vector<std::pair<std::string, std::string>>& builtin_event_types();

} // namespace troupe::actors

#pragma once

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace troupe::actors {

class metrics_registry;

/// Where services find the node's webhook dispatcher (`poke_atom`: deliveries are due).
inline constexpr caf::atom_value webhook_dispatcher_key = caf::atom("webhooks");

struct webhook_dispatcher_options {
  std::string node;     ///< cluster.node-id: names this node's leases
  std::string seal_key; ///< opens endpoint secrets (see webhooks_service)
  std::vector<std::uint32_t> retry_schedule{5, 300, 1800, 7200, 18000, 36000, 36000};
  std::chrono::milliseconds timeout{15000};
  std::uint32_t disable_after = 10;
  bool allow_private_targets = false;
  std::chrono::milliseconds poll_interval{250};
  std::uint32_t max_in_flight = 4000;      ///< claimed and not yet recorded, on this node
  std::uint32_t claim_batch = 1000;        ///< deliveries claimed per tenant per round
  std::uint32_t endpoint_concurrency = 32; ///< requests in flight per endpoint (ordered: 1)
  std::size_t client_threads = 1;
  std::shared_ptr<metrics_registry> metrics;
};

/// Spawns the node's webhook dispatcher (docs/webhooks.md "Delivery"), registered as
/// `webhook_dispatcher_key`: it claims due deliveries under leases, hands them to one
/// `webhook_endpoint` actor per endpoint (queue, order, rate limit, signing, sending) and
/// records every attempt in batches; endpoints that answer 410 or fail too often are
/// disabled through the tenant's audited path.
caf::actor spawn_webhook_dispatcher(caf::local_actor* parent, webhook_dispatcher_options options);

/// Tells this node's dispatcher that deliveries are due now (no-op if it is not running).
void poke_webhook_dispatcher(caf::actor_system& system);

} // namespace troupe::actors

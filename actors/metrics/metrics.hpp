#pragma once

#include "protocol/actors.hpp"

#include <caf/fwd.hpp>

#include <memory>

namespace troupe::actors {

class metrics_registry;

/// Spawns the `metrics` actor: it renders `registry` for `GET /metrics`, off the io threads,
/// and publishes itself in the actor registry under `protocol::metrics_key`.
protocol::metrics_actor spawn_metrics(caf::local_actor* parent,
                                      std::shared_ptr<const metrics_registry> registry);

} // namespace troupe::actors

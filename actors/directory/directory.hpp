#pragma once

#include "actors/directory/tenant.hpp"
#include "protocol/directory.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace troupe::actors {

class metrics_registry;

struct directory_options {
  /// An active tenant unused this long is passivated (tenants.idle-timeout-s).
  caf::timespan idle_timeout = std::chrono::seconds{300};
  /// How often idle tenants are looked for.
  caf::timespan sweep_interval = std::chrono::seconds{10};
  /// How long an activation may wait for the loader.
  caf::timespan load_timeout = std::chrono::seconds{5};
  /// The loader to ask on activation, looked up at each use (it may have been restarted).
  std::function<protocol::tenant_loader_actor()> loader;
  /// If set, `troupe_actors{kind="tenant"}` follows activations and passivations.
  std::shared_ptr<metrics_registry> metrics;
  /// What every tenant actor is spawned with (audit keys, batch size).
  tenant_options tenant;
};

/// Spawns the directory (see protocol::directory_actor). Tenant actors are its linked
/// children: a crashed tenant is dropped and re-activated from PostgreSQL on its next use
/// (virtual-actor style); concurrent activations of one tenant load it once.
protocol::directory_actor spawn_directory(caf::local_actor* parent, directory_options options);
protocol::directory_actor spawn_directory(caf::actor_system& sys, directory_options options);

} // namespace troupe::actors

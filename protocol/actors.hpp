#pragma once

// Typed interfaces of the actors other folders talk to. Data and interfaces only.

#include "protocol/type_ids.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace troupe::protocol {

/// Renders the Prometheus exposition of this node (`GET /metrics`).
using metrics_actor = caf::typed_actor<caf::replies_to<render_atom>::with<std::string>>;

/// Registry names under which long-lived actors publish their current handle. A restarted
/// actor re-registers, so callers look up at request time instead of caching a handle.
inline constexpr caf::atom_value metrics_key = caf::atom("metrics");
inline constexpr caf::atom_value node_key = caf::atom("node");
inline constexpr caf::atom_value db_pool_key = caf::atom("db_pool");

inline constexpr caf::atom_value hasher_key = caf::atom("hasher");

/// The part of the password hasher that creating a tenant needs (actors/auth).
using password_hashing_actor
  = caf::typed_actor<caf::replies_to<hash_atom, std::string>::with<std::string>>;

/// The database pool's connections right now, for `troupe_db_pool_connections{state}`.
struct db_pool_stats {
  std::uint32_t busy = 0;
  std::uint32_t idle = 0;
  std::uint32_t waiting = 0; ///< units of work queued for a connection
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, db_pool_stats& x) {
  return f(caf::meta::type_name("db_pool_stats"), x.busy, x.idle, x.waiting);
}

/// The part of the database pool the metrics actor reads.
using pool_stats_actor = caf::typed_actor<caf::replies_to<caf::get_atom>::with<db_pool_stats>>;

/// Anything that answers the readiness question (`node_supervisor`, the database pool).
using readiness_actor = caf::typed_actor<caf::replies_to<ready_atom>::with<readiness>>;

} // namespace troupe::protocol

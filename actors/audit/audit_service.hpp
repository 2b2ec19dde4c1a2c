#pragma once

#include "protocol/audit.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace troupe::storage {
struct audit_secrets;
} // namespace troupe::storage

namespace troupe::actors {

/// Spawns the audit log's reader (protocol::audit_reader_actor, registered under
/// `audit_reader_key`): pages of a tenant's entries through the database pool.
protocol::audit_reader_actor
spawn_audit_reader(caf::local_actor* parent, std::shared_ptr<const storage::audit_secrets> secrets);

/// The retention pruner: answers `prune_atom` with the number of entries removed (tests and
/// operators), `(prune_atom, tenant id)` for one tenant's chain (the `audit.prune` job);
/// `sweep_atom` is its own timer. Registered as `audit_pruner_key`.
using audit_pruner_actor
  = caf::typed_actor<caf::replies_to<protocol::prune_atom>::with<std::uint64_t>,
                     caf::replies_to<protocol::prune_atom, std::string>::with<std::uint64_t>,
                     caf::reacts_to<protocol::sweep_atom>>;

inline constexpr caf::atom_value audit_pruner_key = caf::atom("aprune");

struct audit_pruner_options {
  std::string owner_conninfo;       ///< the tables' owner: the server's role may not delete entries
  std::uint32_t retention_days = 0; ///< audit.retention-days; 0: the pruner does nothing
  caf::timespan first_run = std::chrono::seconds{2};
  caf::timespan interval = std::chrono::hours{1};
  std::shared_ptr<const storage::audit_secrets> secrets;
};

/// Spawns the pruner, a detached actor (it blocks on its own PostgreSQL connection, opened
/// for each run). With retention on it prunes shortly (`first_run`) after start, then every
/// `interval`.
audit_pruner_actor spawn_audit_pruner(caf::local_actor* parent, audit_pruner_options options);

} // namespace troupe::actors

#pragma once

#include "protocol/tenants.hpp"

#include <caf/fwd.hpp>

#include <memory>

namespace troupe::storage {
struct audit_secrets;
} // namespace troupe::storage

namespace troupe::actors {

class metrics_registry;

/// Spawns the `tenants` actor behind /admin/v1/tenants. It hashes the owner's password on the
/// password hasher (never on itself), runs each change as one unit of work on the database
/// pool, and publishes itself under `protocol::tenants_key`. Stateless between requests.
/// Every change is audited: a creation writes entry 1 of the new tenant's chain in the
/// creating transaction; updates and deletions run as audited work on the tenant actor.
/// `metrics`, if set, counts the creations' entries in `troupe_audit_entries_total`.
protocol::tenants_actor spawn_tenants_service(caf::local_actor* parent,
                                              std::shared_ptr<const storage::audit_secrets> audit,
                                              std::shared_ptr<metrics_registry> metrics = nullptr);

} // namespace troupe::actors

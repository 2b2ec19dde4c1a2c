#pragma once

#include "protocol/tenants.hpp"

#include <caf/fwd.hpp>

namespace troupe::actors {

/// Spawns the `tenants` actor behind /admin/v1/tenants. It hashes the owner's password on the
/// password hasher (never on itself), runs each change as one unit of work on the database
/// pool, and publishes itself under `protocol::tenants_key`. Stateless between requests.
protocol::tenants_actor spawn_tenants_service(caf::local_actor* parent);

} // namespace troupe::actors

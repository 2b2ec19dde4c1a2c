#pragma once

#include "protocol/directory.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <memory>

namespace troupe::storage {
struct audit_secrets;
} // namespace troupe::storage

namespace troupe::actors {

class metrics_registry;

struct tenant_options {
  /// Keys of the audit log (from auth.key-encryption-key); null: audited work fails.
  std::shared_ptr<const storage::audit_secrets> audit;
  /// At most this many queued units of work share one transaction.
  std::size_t max_batch = 64;
  /// How long a transaction may take before its units fail with service_unavailable.
  caf::timespan db_timeout = std::chrono::seconds{10};
  /// If set, `troupe_audit_entries_total` counts committed entries.
  std::shared_ptr<metrics_registry> metrics;
};

/// Spawns a tenant actor (see protocol::tenant_actor) as a linked, monitored child of the
/// directory. It finds the database pool in the registry at each use.
protocol::tenant_actor spawn_tenant(caf::local_actor* directory, protocol::tenant_record record,
                                    tenant_options options);

} // namespace troupe::actors

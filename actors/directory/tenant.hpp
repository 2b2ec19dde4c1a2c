#pragma once

#include "actors/ratelimit/rate_limiter.hpp"
#include "protocol/directory.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace troupe::storage {
struct audit_secrets;
} // namespace troupe::storage

namespace troupe::actors {

class key_ring;
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
  /// The public keys that verify access tokens; null: every token is refused.
  std::shared_ptr<const key_ring> keys;
  std::string issuer = "troupe";      ///< auth.issuer: the `iss` access tokens must carry
  std::uint32_t max_failures = 10;    ///< auth.max-failures per account+IP in 15 minutes
  std::size_t cache_capacity = 10000; ///< entries per auth cache (tokens, sessions, ...)
  /// Default rate limits (limits.principal, limits.tenant, limits.anonymous); a tenant's own
  /// `limits` override them. {0, …}: no limit.
  rate_limit principal_limit{600, 60};
  rate_limit tenant_limit{6000, 60};
  rate_limit anonymous_limit{30, 60};
  rate_limit inbound_limit{6000, 60}; ///< per inbound webhook source
  /// quota.requests-per-month (0: none); a tenant's `limits.requests_per_month` overrides it.
  std::uint64_t quota = 0;
  /// idempotency.ttl-s: how long a kept response can be replayed.
  std::uint32_t idempotency_ttl_s = 86400;
  /// How long a claimed key stays in flight if its request never finishes (a crash).
  std::uint32_t idempotency_lease_s = 60;
  /// A session actor with nothing to do for this long stops.
  caf::timespan session_idle = std::chrono::seconds{60};
};

/// Spawns a tenant actor (see protocol::tenant_actor) as a linked, monitored child of the
/// directory. It finds the database pool in the registry at each use.
protocol::tenant_actor spawn_tenant(caf::local_actor* directory, protocol::tenant_record record,
                                    tenant_options options);

} // namespace troupe::actors

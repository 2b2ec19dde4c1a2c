#pragma once

// Idempotency keys (migrations/0006_idempotency.sql, docs/idempotency.md).

#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace troupe::storage {

/// What a claim found.
struct idempotency_claim {
  enum class outcome { claimed, replay, in_flight, mismatch };
  outcome result = outcome::claimed;
  int status = 0;
  std::string response; ///< JSON object text: {"body","content_type","headers":[[n,v],...]}
};

/// The transaction's tenant's idempotency keys. Blocking: call only inside a `db_work` body.
class idempotency_repository {
public:
  explicit idempotency_repository(pg_transaction& tx) : tx_(tx) {}

  /// Claims (principal, key) for `fingerprint` under a lease of `lease_s`: a new key (or an
  /// expired record, or an in-flight one whose lease ran out: its holder crashed) is claimed;
  /// a kept response of the same fingerprint is a replay; another fingerprint a mismatch; a
  /// live lease in flight. Kept records live `ttl_s` from their completion.
  [[nodiscard]] caf::expected<idempotency_claim> claim(const std::string& principal,
                                                       const std::string& key,
                                                       const std::string& fingerprint,
                                                       std::uint32_t lease_s, std::uint32_t ttl_s);
  /// Keeps the response of a claimed key for `ttl_s`.
  [[nodiscard]] caf::error complete(const std::string& principal, const std::string& key,
                                    int status, const std::string& response, std::uint32_t ttl_s);
  /// Releases a claimed key (its request failed with a 5xx: it may be retried).
  [[nodiscard]] caf::error release(const std::string& principal, const std::string& key);
  /// Deletes expired records; answers how many.
  [[nodiscard]] caf::expected<std::uint64_t> purge();

private:
  pg_transaction& tx_;
};

} // namespace troupe::storage

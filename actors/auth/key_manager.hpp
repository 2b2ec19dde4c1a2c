#pragma once

#include "actors/auth/key_ring.hpp"
#include "protocol/auth.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace troupe::actors {

struct key_manager_options {
  std::shared_ptr<key_ring> ring;         ///< where the snapshot is published
  std::string seal_key;                   ///< 32 bytes (HKDF of auth.key-encryption-key)
  std::int64_t rotation_s = 30LL * 86400; ///< auth.key-rotation-days
  std::int64_t access_ttl_s = 900;        ///< auth.access-ttl-s
  /// How often the stored keys are re-read (other nodes' rotations, expiry of old keys).
  caf::timespan refresh_interval = std::chrono::seconds{60};
};

/// Spawns the key manager (protocol::key_manager_actor): it loads the signing keys through
/// the database pool at start and every `refresh_interval`, generates and stores a new key
/// when none signs or the newest is due (under an advisory lock, so one node makes it),
/// and publishes the snapshot into `ring`. Registered as `protocol::key_manager_key`.
protocol::key_manager_actor spawn_key_manager(caf::local_actor* parent,
                                              key_manager_options options);

/// The sealed form of a signing key's private seed (AES-256-GCM, AAD bound to the kid).
std::string seal_signing_key(const std::string& seal_key, const std::string& kid,
                             const std::string& seed);

} // namespace troupe::actors

#pragma once

#include "protocol/auth.hpp"

#include <caf/fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace troupe::actors {

class key_ring;

struct auth_service_options {
  std::shared_ptr<const key_ring> keys;  ///< signs access tokens
  std::string issuer = "troupe";         ///< auth.issuer
  std::uint32_t access_ttl_s = 900;      ///< auth.access-ttl-s
  std::uint32_t refresh_ttl_s = 2592000; ///< auth.refresh-ttl-s
  std::string totp_seal_key;             ///< 32 bytes: seals TOTP secrets at rest
  /// A PHC string to verify against when the email is unknown (actors::dummy_hash of the
  /// configured parameters), so that both failures take similar time.
  std::string dummy_hash;
};

/// Spawns the auth service (protocol::auth_actor; registered as `protocol::auth_key`). It
/// is stateless apart from a small cache of API-key tenants: each operation reads through
/// the database pool, hashes on the password hasher, and writes as audited work through
/// the directory (a session's work through its session actor), so it never blocks.
protocol::auth_actor spawn_auth_service(caf::local_actor* parent, auth_service_options options);

} // namespace troupe::actors

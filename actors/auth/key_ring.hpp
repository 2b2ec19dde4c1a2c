#pragma once

#include "protocol/jwt.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace troupe::storage {
struct signing_key_row;
} // namespace troupe::storage

namespace troupe::actors {

/// The signing keys in use, as one immutable snapshot: the key that signs new access tokens,
/// the public keys that verify them, and the JWKS document. Published by the key manager,
/// read by every tenant actor and the auth service (any thread).
struct key_snapshot {
  std::string signing_kid; ///< empty: no key yet (signing fails with service_unavailable)
  protocol::jwt::ed25519_key signing;
  std::map<std::string, std::string> public_keys; ///< kid → 32-byte public key
  std::string jwks;                               ///< `{"keys":[...]}`
};

/// Holds the current snapshot. Thread-safe; readers copy a pointer under a mutex.
class key_ring {
public:
  std::shared_ptr<const key_snapshot> current() const;
  void publish(std::shared_ptr<const key_snapshot> snapshot);

private:
  mutable std::mutex mutex_;
  std::shared_ptr<const key_snapshot> current_ = std::make_shared<key_snapshot>();
};

/// What the key manager must do with the stored keys at `now` (Unix seconds).
struct key_plan {
  bool generate = false;          ///< no signing key, or the newest is due for rotation
  std::string signer;             ///< the kid that signs (when !generate)
  std::vector<std::string> valid; ///< kids still verifying (and in the JWKS), signer first
};

/// The plan for `keys`: the newest unretired key signs unless it is `rotation_s` old; a
/// retired key (or an older unretired one) verifies until `access_ttl_s` + 60 s after it
/// stopped signing, so that every token it signed can still be checked until it expires.
key_plan plan_keys(const std::vector<storage::signing_key_row>& keys, std::int64_t now,
                   std::int64_t rotation_s, std::int64_t access_ttl_s);

/// `kid` of a public key: the first 16 bytes of its SHA-256, base64url (22 characters).
std::string key_id(const std::string& public_key);

} // namespace troupe::actors

#pragma once

// What a tenant actor keeps in memory to authenticate requests without PostgreSQL
// (docs/auth.md "Access tokens"), and its login throttle. Plain classes: no CAF, no I/O.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::actors {

/// A verified access token's claims.
struct token_claims {
  std::string sub;
  std::string sid;
  std::string tid;
  std::int64_t exp = 0;
};

struct session_state {
  std::string user_id;
  bool revoked = false;
};

struct user_state {
  std::string profile; ///< the API's User object as JSON text
  std::vector<std::string> permissions;
};

struct api_key_state {
  std::string id;
  std::string created_by;
  std::vector<std::string> permissions;
  bool revoked = false;
  std::int64_t expires = 0; ///< Unix seconds; 0: never
};

/// The tenant's caches of verified tokens (by SHA-256 of the token), sessions, users and API
/// keys (by SHA-256 of the key). Each holds at most `capacity` entries and starts over when
/// full (a miss only costs a database read). `epoch()` grows with every invalidation, so a
/// load that started before one does not store what it read.
class auth_cache {
public:
  explicit auth_cache(std::size_t capacity = 10000) : capacity_(capacity) {}

  const token_claims* token(const std::string& digest) const;
  void put_token(const std::string& digest, token_claims claims);
  const session_state* session(const std::string& id) const;
  void put_session(const std::string& id, session_state s, std::uint64_t loaded_at_epoch);
  const user_state* user(const std::string& id) const;
  void put_user(const std::string& id, user_state u, std::uint64_t loaded_at_epoch);
  const api_key_state* key(const std::string& digest) const;
  void put_key(const std::string& digest, api_key_state k, std::uint64_t loaded_at_epoch);

  /// Forgets what `what` names: "session:<id>", "user:<id>", "api_key:<id>", or "roles"
  /// (every cached user: their permissions depend on the roles).
  void invalidate(const std::string& what);
  std::uint64_t epoch() const {
    return epoch_;
  }
  std::size_t size() const {
    return tokens_.size() + sessions_.size() + users_.size() + keys_.size();
  }

private:
  template <class Map, class T>
  void put(Map& map, const std::string& key, T value);

  std::size_t capacity_;
  std::uint64_t epoch_ = 0;
  std::unordered_map<std::string, token_claims> tokens_;
  std::unordered_map<std::string, session_state> sessions_;
  std::unordered_map<std::string, user_state> users_;
  std::unordered_map<std::string, api_key_state> keys_;
};

/// Failed logins per account+IP in a sliding window (API.md: `auth.max-failures` in 15 min
/// → 429). Memory is bounded: at most `max_accounts` accounts are tracked; beyond that the
/// ones whose failures have all left the window go first, then the oldest half.
class login_throttle {
public:
  using clock = std::chrono::steady_clock;

  explicit login_throttle(std::uint32_t max_failures,
                          std::chrono::seconds window = std::chrono::minutes{15},
                          std::size_t max_accounts = 100000)
      : max_failures_(max_failures), window_(window), max_accounts_(max_accounts) {}

  /// Seconds until `account` may try again (0: now): until its oldest counted failure
  /// leaves the window, rounded up.
  std::uint32_t wait_seconds(const std::string& account, clock::time_point now);
  void failed(const std::string& account, clock::time_point now);
  void succeeded(const std::string& account);
  std::size_t tracked() const {
    return failures_.size();
  }

private:
  void trim(std::deque<clock::time_point>& times, clock::time_point now) const;
  std::uint32_t max_failures_;
  std::chrono::seconds window_;
  std::size_t max_accounts_;
  std::unordered_map<std::string, std::deque<clock::time_point>> failures_;
};

} // namespace troupe::actors

#pragma once

// The auth tables (migrations/0003_auth.sql, docs/auth.md): users as login sees them,
// sessions and refresh tokens, MFA challenges and recovery codes, API keys, signing keys.
// Byte strings (hashes, sealed secrets) are raw bytes here; SQL sees them as bytea.

#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::storage {

/// A user row with what authentication needs.
struct user_row {
  std::string id;
  std::string email;
  std::optional<std::string> display_name;
  std::vector<std::string> roles;
  bool mfa_enabled = false;
  std::string created_at; ///< RFC 3339 UTC with milliseconds
  std::string password_hash;
  std::string totp_secret;  ///< sealed; empty if none
  std::string totp_pending; ///< sealed; empty if none
  std::int64_t totp_last_step = 0;
};

/// A session (refresh-token family) as the per-request check needs it.
struct session_row {
  std::string id;
  std::string user_id;
  bool revoked = false;
  bool expired = false;
  std::string created_at;
  std::string last_used_at;
  std::string ip;
  std::string user_agent;
};

/// A refresh token looked up by hash, with its session (locked for update).
struct refresh_row {
  std::string session_id;
  bool spent = false;
  session_row session;
};

struct challenge_row {
  std::string id;
  std::string user_id;
  std::string secret_hash;
  bool expired = false;
  bool used = false;
  int failures = 0;
};

struct api_key_row {
  std::string id;
  std::string name;
  std::string prefix;
  std::vector<std::string> permissions;
  std::string created_by; ///< empty if the creator was deleted
  std::string created_at;
  std::optional<std::string> expires_at;
  bool expired = false;
  bool revoked = false;
  std::int64_t expires_unix = 0; ///< Unix seconds; 0: never
};

struct signing_key_row {
  std::string kid;
  std::string public_key;
  std::string private_sealed;
  std::int64_t created_at = 0;            ///< Unix seconds
  std::optional<std::int64_t> retired_at; ///< Unix seconds
};

/// The auth tables of the transaction's tenant (signing keys and the API-key index are
/// platform data: any transaction). Blocking: call only inside a `db_work` body.
class auth_repository {
public:
  explicit auth_repository(pg_transaction& tx) : tx_(tx) {}

  // -- users
  [[nodiscard]] caf::expected<std::optional<user_row>> user_by_email(const std::string& email);
  [[nodiscard]] caf::expected<std::optional<user_row>> user_by_id(const std::string& id);
  /// Inserts a user; a taken email is `conflict`.
  [[nodiscard]] caf::expected<user_row> insert_user(const std::string& id, const std::string& email,
                                                    const std::string& password_hash,
                                                    const std::optional<std::string>& display_name,
                                                    const std::vector<std::string>& roles);
  /// Users by id after `after` (empty: from the start), `limit` + 1 at most.
  [[nodiscard]] caf::expected<std::vector<user_row>> users(const std::string& after,
                                                           std::uint32_t limit);
  /// Sets (or, with nullopt, clears) the display name; nullopt if there is no such user.
  [[nodiscard]] caf::expected<std::optional<user_row>>
  set_display_name(const std::string& user_id, const std::optional<std::string>& name);
  /// Replaces the user's roles; nullopt if there is no such user.
  [[nodiscard]] caf::expected<std::optional<user_row>>
  set_roles(const std::string& user_id, const std::vector<std::string>& roles);
  /// Deletes the user row (sessions, tokens, challenges and codes go with it) and revokes the
  /// API keys they created; answers the revoked keys' ids. False-y optional: no such user.
  [[nodiscard]] caf::expected<std::optional<std::vector<std::string>>>
  delete_user(const std::string& user_id);
  /// Users holding `role`, other than `except`.
  [[nodiscard]] caf::expected<std::int64_t> count_with_role(const std::string& role,
                                                            const std::string& except);
  [[nodiscard]] caf::error set_password(const std::string& user_id, const std::string& hash);
  [[nodiscard]] caf::error set_totp_pending(const std::string& user_id, const std::string& sealed);
  /// Turns MFA on with the pending secret and records `step` as used.
  [[nodiscard]] caf::error activate_totp(const std::string& user_id, std::int64_t step);
  [[nodiscard]] caf::error disable_totp(const std::string& user_id);
  /// Records `step` as the last accepted TOTP step: false if it was not newer (a replay).
  [[nodiscard]] caf::expected<bool> use_totp_step(const std::string& user_id, std::int64_t step);
  [[nodiscard]] caf::error set_recovery_codes(const std::string& user_id,
                                              const std::vector<std::string>& hashes);
  /// Spends an unused recovery code: false if there is none with this hash.
  [[nodiscard]] caf::expected<bool> use_recovery_code(const std::string& user_id,
                                                      const std::string& hash);

  // -- sessions
  [[nodiscard]] caf::error create_session(const std::string& id, const std::string& user_id,
                                          std::uint64_t ttl_seconds, const std::string& ip,
                                          const std::string& user_agent,
                                          const std::string& token_hash);
  [[nodiscard]] caf::expected<std::optional<session_row>> session(const std::string& id);
  /// The refresh token with this hash and its session, both locked until COMMIT.
  [[nodiscard]] caf::expected<std::optional<refresh_row>> refresh_token(const std::string& hash);
  /// Spends `old_hash`, adds `new_hash` to the session and marks it used now.
  [[nodiscard]] caf::error rotate(const std::string& session_id, const std::string& old_hash,
                                  const std::string& new_hash, const std::string& ip,
                                  const std::string& user_agent);
  /// Revokes a live session of `user_id` (any user's if empty): false if none was live.
  [[nodiscard]] caf::expected<bool>
  revoke_session(const std::string& id, const std::string& user_id, const std::string& reason);
  /// Revokes every live session of the user but `keep`; answers their ids.
  [[nodiscard]] caf::expected<std::vector<std::string>>
  revoke_sessions_of(const std::string& user_id, const std::string& keep,
                     const std::string& reason);
  /// Live sessions of the user, newest first, `limit` + 1 at most, ids below `before`.
  [[nodiscard]] caf::expected<std::vector<session_row>>
  sessions_of(const std::string& user_id, const std::string& before, std::uint32_t limit);

  // -- MFA challenges
  [[nodiscard]] caf::error create_challenge(const std::string& id, const std::string& user_id,
                                            const std::string& secret_hash,
                                            std::uint64_t ttl_seconds);
  [[nodiscard]] caf::expected<std::optional<challenge_row>> challenge(const std::string& id);
  [[nodiscard]] caf::error challenge_failed(const std::string& id);
  [[nodiscard]] caf::error challenge_used(const std::string& id);

  // -- API keys
  [[nodiscard]] caf::expected<api_key_row>
  insert_api_key(const std::string& tenant_id, const std::string& id, const std::string& name,
                 const std::string& prefix, const std::string& key_hash,
                 const std::vector<std::string>& permissions, const std::string& created_by,
                 const std::optional<std::string>& expires_at);
  [[nodiscard]] caf::expected<std::vector<api_key_row>> api_keys(const std::string& after,
                                                                 std::uint32_t limit);
  [[nodiscard]] caf::expected<std::optional<api_key_row>> api_key_by_hash(const std::string& hash);
  /// Revokes a key: nullopt if there is none with this id (revoked already or not).
  [[nodiscard]] caf::expected<std::optional<api_key_row>> revoke_api_key(const std::string& id);
  /// The tenant of the key with this hash (platform lookup), or nullopt.
  [[nodiscard]] caf::expected<std::optional<std::string>> api_key_tenant(const std::string& hash);

  // -- signing keys (platform)
  [[nodiscard]] caf::expected<std::vector<signing_key_row>> signing_keys();
  /// Serialises key generation across nodes until COMMIT.
  [[nodiscard]] caf::error lock_signing_keys();
  [[nodiscard]] caf::error insert_signing_key(const signing_key_row& key);
  /// Retires every signing key but `kid` that is not retired yet.
  [[nodiscard]] caf::error retire_signing_keys_but(const std::string& kid);

private:
  pg_transaction& tx_;
};

/// The User object of API.md ("id", "email", "display_name", "roles", "mfa_enabled",
/// "created_at") as JSON text.
std::string user_json(const user_row& user);

} // namespace troupe::storage

#pragma once

// The audit entry's stored form (docs/audit.md): redaction, encryption of personal data,
// the canonical text the hash covers, and the API rendering. Pure functions: no database.

#include "protocol/audit.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::storage::audit_format {

using json = nlohmann::json;

/// The hash before the first entry: 32 zero bytes.
const std::string& genesis_hash();

/// True if a field of this name holds a secret (passwords, hashes, tokens, keys, TOTP
/// secrets...): its value is never stored, only "[redacted]". Case-insensitive.
bool is_secret_field(std::string_view name);

/// True if a field of this name holds personal data (emails, names, phone numbers) in a
/// change of `resource_type`, or is listed in `extra`. Case-insensitive.
bool is_personal_field(std::string_view name, std::string_view resource_type,
                       const std::vector<std::string>& extra);

/// `value` with every secret field (at any depth) replaced by "[redacted]".
json redact(const json& value);

/// The data subject whose key encrypts `ip` and `user_agent`.
std::string origin_subject(const protocol::audit_origin& origin);

/// The data subject whose key encrypts personal fields of the change.
std::string change_subject(const protocol::audit_origin& origin,
                           const protocol::audit_change& change);

/// A data key as the entry writer needs it: its id, and the raw 32-byte key (empty when the
/// key was destroyed: the subject was erased, new personal data is stored as "[erased]").
struct data_key {
  std::string id;
  std::string key;
};

/// Everything of an entry except its place in the chain.
struct entry_input {
  std::string tenant_id;
  std::string id; ///< UUIDv7
  std::string at; ///< RFC 3339 UTC with milliseconds
  protocol::audit_origin origin;
  protocol::audit_change change;
};

/// An entry ready to insert.
struct sealed_entry {
  std::uint64_t seq = 0;
  std::string canonical; ///< the stored text the hash covers
  std::string prev_hash; ///< 32 bytes
  std::string hash;      ///< 32 bytes
};

/// Builds the canonical entry at `seq` after `prev_hash`: secrets redacted, personal data
/// sealed (AES-256-GCM) under the subjects' keys, which `key_for(subject)` supplies.
sealed_entry seal_entry(const entry_input& in, std::uint64_t seq, const std::string& prev_hash,
                        const std::function<data_key(const std::string& subject)>& key_for);

/// SHA-256(prev_hash ‖ canonical).
std::string chain_hash(const std::string& prev_hash, std::string_view canonical);

/// The ids of the data keys an entry's sealed fields use.
std::vector<std::string> key_ids(const json& canonical);

/// What a reader knows of a data key: nullopt = destroyed (the field reads "[erased]").
using key_lookup = std::function<std::optional<std::optional<std::string>>(const std::string& id)>;

/// The API's JSON object for a stored entry: sealed fields opened with `lookup` ("[erased]"
/// when the key is destroyed, "[unavailable]" if it cannot be opened), plus the hashes (hex).
json render(const json& canonical, const std::string& prev_hash, const std::string& hash,
            const key_lookup& lookup);

/// The additional authenticated data binding a sealed field to its entry and place.
std::string field_aad(std::string_view tenant_id, std::string_view entry_id,
                      std::string_view pointer);

/// The data-key wrapping: AES-256-GCM under the wrap key, bound to tenant and subject.
std::string wrap_key(const std::string& wrap_key, const std::string& tenant_id,
                     const std::string& subject, const std::string& key);
std::optional<std::string> unwrap_key(const std::string& wrap_key, const std::string& tenant_id,
                                      const std::string& subject, const std::string& wrapped);

} // namespace troupe::storage::audit_format

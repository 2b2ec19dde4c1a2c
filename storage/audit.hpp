#pragma once

#include "protocol/audit.hpp"
#include "storage/audit_format.hpp"
#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace troupe::storage {

/// The head of a tenant's hash chain: the last entry's seq and hash (32 bytes). An empty
/// chain is seq 0 with the genesis hash; after a retention prune that removed everything,
/// the head is the last checkpoint.
struct audit_head {
  std::uint64_t seq = 0;
  std::string hash = audit_format::genesis_hash();
};

/// The audit log's secrets, derived from auth.key-encryption-key (HKDF-SHA-256).
struct audit_secrets {
  std::string wrap_key;       ///< AES-256 key that wraps the per-subject data keys
  std::string checkpoint_key; ///< HMAC-SHA-256 key of retention checkpoints

  static std::shared_ptr<const audit_secrets> derive(const std::string& key_encryption_key);
};

/// Data keys already known, by subject (the tenant actor keeps them between transactions).
using audit_key_cache = std::map<std::string, audit_format::data_key>;

/// An entry about to be appended.
struct audit_draft {
  protocol::audit_origin origin;
  protocol::audit_change change;
};

/// The tenant's audit log, inside one unit of work (the transaction carries the tenant).
/// Blocking: call only inside a `db_work` body.
class audit_repository {
public:
  audit_repository(pg_transaction& tx, const audit_secrets& secrets);

  /// The chain head in the database (last entry, else last checkpoint, else genesis).
  [[nodiscard]] caf::expected<audit_head> head();

  /// Appends `drafts` in order after `head`: one statement for the data keys of subjects not
  /// in `known` (skipped when all are; the keys it fetched land in `fetched`), then one
  /// INSERT of every entry. Returns the new head. Another writer that appended first makes
  /// this `conflict` (the primary key is (tenant_id, seq)): reload the head. Keys in
  /// `fetched` exist only if the transaction commits.
  /// With `finish`, the INSERT is the transaction's last statement and goes out together
  /// with COMMIT (one round trip; see pg_transaction::execute_and_commit).
  [[nodiscard]] caf::expected<audit_head> append(const audit_head& head,
                                                 const std::vector<audit_draft>& drafts,
                                                 const audit_key_cache* known = nullptr,
                                                 audit_key_cache* fetched = nullptr,
                                                 bool finish = false);

  /// Crypto-shredding: destroys `subject`'s data key. Every personal field sealed under it
  /// then reads "[erased]"; the entries and their hashes are untouched, so verify passes.
  /// True if a key existed.
  [[nodiscard]] caf::expected<bool> destroy_key(const std::string& subject);

  /// One page of entries, rendered for the API.
  [[nodiscard]] caf::expected<protocol::audit_page> list(const protocol::audit_query& query);

  /// Walks the chain from the oldest kept entry (or the last checkpoint) in batches: every
  /// hash recomputed, every link and seq checked, the indexed columns compared with the
  /// hashed text; `known` (the tenant actor's head) must be in the chain.
  [[nodiscard]] caf::expected<protocol::audit_verification> verify(const audit_head& known);

private:
  pg_transaction& tx_;
  const audit_secrets& secrets_;
};

/// Whether `key_encryption_key` is the key this database was set up with: the first start
/// records a value derived from it (table `platform_keys`), later starts compare (in constant
/// time). Run as the owner, before serving. False: a different key.
[[nodiscard]] caf::expected<bool> key_matches_database(pg_connection& owner,
                                                       const std::string& key_encryption_key);

/// The text of a checkpoint's signature input.
std::string checkpoint_message(const std::string& tenant_id, std::uint64_t seq,
                               const std::string& hash);

/// What a retention run did.
struct prune_report {
  std::uint64_t removed = 0; ///< entries removed
  std::uint64_t chains = 0;  ///< chains that lost entries
  std::uint64_t failed = 0;  ///< chains left alone: they did not verify, or an error
  caf::error first_error;    ///< the first failure, for the log
};

/// Retention: as the owner role (`conn` logged in as the tables' owner), for every chain
/// removes the longest prefix of entries older than `cutoff` (an RFC 3339 instant) and stores
/// a signed checkpoint of the last one removed, in one transaction per chain. A chain that
/// does not verify is left alone (a checkpoint must never bless a tampered entry). An error
/// only if the chains cannot be listed.
[[nodiscard]] caf::expected<prune_report> prune_audit(pg_connection& conn,
                                                      const audit_secrets& secrets,
                                                      const std::string& cutoff,
                                                      const std::string& only_tenant = {});

} // namespace troupe::storage

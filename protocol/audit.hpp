#pragma once

// The audit log (API.md "Audit log"): what a change records, how it is queried, and the
// unit of work that writes a change and its entry in one transaction. Data only.

#include "protocol/type_ids.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <nlohmann/json.hpp>

#include <any>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace troupe::storage {
class pg_transaction; // the body of an audited unit of work runs inside one (storage/db.hpp)
} // namespace troupe::storage

namespace troupe::protocol {

/// Who acts and from where: taken from the request (or "system" for the server's own work).
struct audit_origin {
  std::string actor_type = "system"; ///< user, api_key, admin, system or anonymous
  std::string actor_id;              ///< empty: none (admin, system, anonymous)
  std::string ip;                    ///< personal data: stored encrypted
  std::string user_agent;            ///< personal data: stored encrypted
  std::string request_id;
  /// The data subject whose key encrypts `ip` and `user_agent`: empty = the actor when it is
  /// a user or an API key, else the tenant-wide key (docs/audit.md "Personal data").
  std::string subject;
  /// The request's W3C `traceparent`, if it sent a valid one: passed on to the webhooks its
  /// events cause (not part of the audit entry).
  std::string traceparent;
};

/// What one audited unit of work did. The caller presets `action`; the body fills in the
/// resource and the before/after images (any JSON; secrets in them are redacted and personal
/// fields encrypted when the entry is written, whatever the body put there).
struct audit_change {
  std::string action;
  std::string resource_type;
  std::string resource_id;
  std::string outcome = "success"; ///< success, denied or error
  nlohmann::json before;           ///< null: none
  nlohmann::json after;            ///< null: none
  /// The data subject of personal fields in `before`/`after` (a user id): empty = the
  /// resource when it is a user, else the actor's subject.
  std::string subject;
  /// Field names that are personal data here, beyond the built-in list (emails, names).
  std::vector<std::string> personal;
  /// Runs in the same transaction after the entry was appended (rarely needed: a change that
  /// removes what the entry's data keys hang on, such as deleting the tenant itself).
  std::function<caf::error(storage::pg_transaction&)> after_append;
  /// What the tenant actor must forget once this commits, before the caller hears of it:
  /// "session:<id>", "user:<id>" (its profile, permissions and sessions), "api_key:<id>",
  /// "roles" (any custom role changed: every user's permissions).
  std::vector<std::string> invalidates;
  /// Set when the body learns who acts (a refresh token names its user): replaces the
  /// origin's actor type and id in the entry.
  std::string actor_type;
  std::string actor_id;
};

/// One audited unit of work (the only way to change tenant data): `body` runs on a database
/// connection inside a transaction that already carries the tenant; it makes its changes
/// and describes them in `change`. Its entry is appended to the tenant's hash chain in the
/// same transaction: both commit, or neither. Errors roll everything back.
struct audited_work {
  audit_origin origin;
  std::string action;
  std::function<caf::expected<std::any>(storage::pg_transaction&, audit_change&)> body;
};

/// What an audited unit of work produced (the body's value), after COMMIT, and where its
/// entry landed in the chain.
struct audited_result {
  std::any value;
  std::uint64_t seq = 0;
};

/// `GET /v1/audit` filters and paging, already validated. Empty strings: no filter.
/// `from`/`to` are RFC 3339 instants (inclusive/exclusive). `cursor`: entries with a smaller
/// seq (newest first) or a greater one (`oldest_first`, the export); 0 = from the start.
struct audit_query {
  std::string actor_id;
  std::string action; ///< exact, or a prefix ending in ".*" ("auth.*")
  std::string resource_type;
  std::string resource_id;
  std::string outcome;
  std::string from;
  std::string to;
  std::uint32_t limit = 50;
  std::uint64_t cursor = 0;
  bool oldest_first = false;
};

/// One page of entries, each already rendered as the API's JSON object text (personal data
/// decrypted, or "[erased]").
struct audit_page {
  std::vector<std::string> data;
  std::uint64_t next_cursor = 0; ///< 0: no further page
};

/// `GET /v1/audit/verify`.
struct audit_verification {
  bool ok = true;
  std::uint64_t entries = 0;
  std::string head_hash;           ///< hex; empty when the chain is empty
  std::uint64_t first_bad_seq = 0; ///< when !ok
  std::string reason;              ///< when !ok: what failed (for the log and the body)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_origin& x) {
  return f(caf::meta::type_name("audit_origin"), x.actor_type, x.actor_id, x.ip, x.user_agent,
           x.request_id, x.subject, x.traceparent);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_query& x) {
  return f(caf::meta::type_name("audit_query"), x.actor_id, x.action, x.resource_type,
           x.resource_id, x.outcome, x.from, x.to, x.limit, x.cursor, x.oldest_first);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_page& x) {
  return f(caf::meta::type_name("audit_page"), x.data, x.next_cursor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_verification& x) {
  return f(caf::meta::type_name("audit_verification"), x.ok, x.entries, x.head_hash,
           x.first_bad_seq, x.reason);
}

/// Reads a tenant's audit log (`tenant` is its id). Writing goes through the tenant actor
/// (protocol/directory.hpp), never through here.
using audit_reader_actor
  = caf::typed_actor<caf::replies_to<list_atom, std::string, audit_query>::with<audit_page>>;

inline constexpr caf::atom_value audit_reader_key = caf::atom("auditread");

} // namespace troupe::protocol

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::protocol::audited_work)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::protocol::audited_result)

#pragma once

// The directory and tenant actors (DESIGN.md "The one idea"): data and interfaces only.

#include "protocol/audit.hpp"
#include "protocol/auth.hpp"
#include "protocol/tenants.hpp"
#include "protocol/type_ids.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace troupe::protocol {

/// One active tenant: the serialisation point for its state. Authentication
/// (`authenticate_atom, credential`) is answered from its caches of verified tokens,
/// sessions, users and API keys (loaded from PostgreSQL on first use, dropped when audited
/// work that changed them commits: `audit_change::invalidates`). `throttle_atom, account`
/// answers how many seconds logins of that account+IP must wait (0: none);
/// `throttle_atom, account, failed` records a failed login or, with false, clears the count.
/// `authenticate_atom, credential, callback` is the same answer through a callback (the HTTP
/// hot path: no requester actor per request). `session_atom, id, work` runs audited work of one
/// session (refresh-token family) through that session's actor, one at a time in arrival order.
/// `usage_atom` answers `GET /v1/usage` as JSON text; `sweep_atom` is its own timer (it writes
/// the request counts of the last second: docs/rate-limits.md "Quotas"). `idempotency_atom`
/// claims, completes or releases an idempotency key (docs/idempotency.md). It
/// answers `resolve_atom` with its record, or `tenant_suspended`. It holds the head of the tenant's
/// audit hash chain and runs every audited unit of work (`run_atom`): it appends their entries in
/// order, several units per transaction when they queue up (group commit), and advances the head
/// only after COMMIT. `verify_atom` checks the chain against that head. `update_atom, record`
/// replaces its record after an admin change (chain head and caches stay). `retire_atom`
/// (passivation) lets it finish the work it accepted, then stop. Reached only through the
/// directory.
using tenant_actor
  = caf::typed_actor<caf::replies_to<resolve_atom>::with<tenant_record>,
                     caf::replies_to<run_atom, audited_work>::with<audited_result>,
                     caf::replies_to<verify_atom>::with<audit_verification>,
                     caf::reacts_to<update_atom, tenant_record>, caf::reacts_to<retire_atom>,
                     caf::replies_to<authenticate_atom, credential>::with<authenticated>,
                     caf::reacts_to<authenticate_atom, credential, auth_callback>,
                     caf::replies_to<throttle_atom, std::string>::with<std::uint32_t>,
                     caf::reacts_to<throttle_atom, std::string, bool>,
                     caf::replies_to<session_atom, std::string, audited_work>::with<audited_result>,
                     caf::reacts_to<sweep_atom>, caf::replies_to<usage_atom>::with<std::string>,
                     caf::replies_to<idempotency_atom, idempotency_call>::with<idempotency_answer>>;

/// Loads a tenant by id or slug when it is activated (the `tenants` actor is one).
using tenant_loader_actor
  = caf::typed_actor<caf::replies_to<caf::get_atom, std::string>::with<tenant_record>>;

/// The only way to a tenant actor. `resolve_atom, key` (an id or slug) activates the tenant
/// from PostgreSQL on first use and answers its record; an unknown tenant is `not_found`, a
/// suspended one `tenant_suspended`. `run_atom, key, work` runs an audited unit of work on
/// the tenant (suspended or not) and `verify_atom, key` verifies its audit chain.
/// `invalidate_atom, id` passivates an active tenant so that its next use reloads it (after
/// a deletion); `update_atom, record` hands an active tenant its changed record (after an
/// admin update: the tenant keeps its chain head and caches). `get_atom` reports how many are
/// active. `get_atom, id` answers the active tenant's handle (an invalid one if inactive): for
/// supervision tests and diagnostics only. `sweep_atom` is the directory's own timer (it passivates
/// idle tenants). Callers never hold tenant handles, so the cluster issue can route to remote
/// owners here.
using directory_actor = caf::typed_actor<
  caf::replies_to<resolve_atom, std::string>::with<tenant_record>,
  caf::replies_to<run_atom, std::string, audited_work>::with<audited_result>,
  caf::replies_to<verify_atom, std::string>::with<audit_verification>,
  caf::reacts_to<invalidate_atom, std::string>, caf::reacts_to<update_atom, tenant_record>,
  caf::replies_to<caf::get_atom>::with<std::uint64_t>,
  caf::replies_to<caf::get_atom, std::string>::with<tenant_actor>, caf::reacts_to<sweep_atom>,
  caf::replies_to<authenticate_atom, std::string, credential>::with<authenticated>,
  caf::reacts_to<authenticate_atom, std::string, credential, auth_callback>,
  caf::replies_to<throttle_atom, std::string, std::string>::with<std::uint32_t>,
  caf::reacts_to<throttle_atom, std::string, std::string, bool>,
  caf::replies_to<session_atom, std::string, std::string, audited_work>::with<audited_result>,
  caf::replies_to<usage_atom, std::string>::with<std::string>,
  caf::replies_to<idempotency_atom, std::string, idempotency_call>::with<idempotency_answer>>;

inline constexpr caf::atom_value directory_key = caf::atom("directory");

} // namespace troupe::protocol

#pragma once

// The directory and tenant actors (DESIGN.md "The one idea"): data and interfaces only.

#include "protocol/tenants.hpp"
#include "protocol/type_ids.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace troupe::protocol {

/// One active tenant: the serialisation point for its state. It answers `resolve_atom` with
/// its record, or `tenant_suspended`. Later modules (limits, idempotency, audit head) add
/// their messages here. Reached only through the directory.
using tenant_actor = caf::typed_actor<caf::replies_to<resolve_atom>::with<tenant_record>>;

/// Loads a tenant by id or slug when it is activated (the `tenants` actor is one).
using tenant_loader_actor
  = caf::typed_actor<caf::replies_to<caf::get_atom, std::string>::with<tenant_record>>;

/// The only way to a tenant actor. `resolve_atom, key` (an id or slug) activates the tenant
/// from PostgreSQL on first use and answers its record; an unknown tenant is `not_found`, a
/// suspended one `tenant_suspended`. `invalidate_atom, id` drops an active tenant so that
/// its next use reloads it (after an admin change). `get_atom` reports how many are active.
/// `get_atom, id` answers the active tenant's handle (an invalid one if inactive): for
/// supervision tests and diagnostics only. `sweep_atom` is the directory's own timer (it passivates
/// idle tenants). Callers never hold tenant handles, so the cluster issue can route to remote
/// owners here.
using directory_actor = caf::typed_actor<
  caf::replies_to<resolve_atom, std::string>::with<tenant_record>,
  caf::reacts_to<invalidate_atom, std::string>, caf::replies_to<caf::get_atom>::with<std::uint64_t>,
  caf::replies_to<caf::get_atom, std::string>::with<tenant_actor>, caf::reacts_to<sweep_atom>>;

inline constexpr caf::atom_value directory_key = caf::atom("directory");

} // namespace troupe::protocol

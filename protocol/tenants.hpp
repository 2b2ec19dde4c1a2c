#pragma once

// The platform's tenant administration (API.md "Platform", /admin/v1/tenants): data and the
// typed interface of the `tenants` actor. Data and interfaces only.

#include "protocol/audit.hpp"
#include "protocol/type_ids.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace troupe::protocol {

/// A tenant as the admin API shows it. `limits` and `settings` are JSON object texts.
struct tenant_record {
  std::string id;
  std::string slug;
  std::string name;
  std::string plan;
  std::string status; ///< "active" or "suspended"
  std::string limits;
  std::string settings;
  std::string created_at; ///< RFC 3339 UTC with milliseconds
  std::string owner_id;   ///< set in the answer to a creation
  std::string owner_email;
};

/// `POST /admin/v1/tenants`, already validated. The password is hashed before it is stored.
struct tenant_creation {
  std::string slug;
  std::string name;
  std::string plan;
  std::string owner_email; ///< lower-cased
  std::string owner_password;
};

/// `PATCH /admin/v1/tenants/{id}`, already validated; empty strings mean "unchanged".
/// `limits` and `settings` are JSON objects merged into the stored ones.
struct tenant_update {
  std::string name;
  std::string plan;
  std::string status;
  std::string limits;
  std::string settings;
};

/// One page of `GET /admin/v1/tenants`.
struct tenant_page {
  std::vector<tenant_record> data;
  std::string next_cursor; ///< empty: no further page
};

/// `GET /admin/v1/tenants?limit=&cursor=`: `after` is the decoded cursor (a tenant id).
struct tenant_query {
  std::uint32_t limit = 50;
  std::string after;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_record& x) {
  return f(caf::meta::type_name("tenant_record"), x.id, x.slug, x.name, x.plan, x.status, x.limits,
           x.settings, x.created_at, x.owner_id, x.owner_email);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_creation& x) {
  return f(caf::meta::type_name("tenant_creation"), x.slug, x.name, x.plan, x.owner_email,
           x.owner_password);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_update& x) {
  return f(caf::meta::type_name("tenant_update"), x.name, x.plan, x.status, x.limits, x.settings);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_page& x) {
  return f(caf::meta::type_name("tenant_page"), x.data, x.next_cursor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tenant_query& x) {
  return f(caf::meta::type_name("tenant_query"), x.limit, x.after);
}

/// A tenant as the admin API shows it (and as its audit entries record it).
nlohmann::json tenant_json(const tenant_record& t);

/// Tenant administration. `key` is a tenant id or slug; changes are audited with the
/// given origin (the platform admin). Errors: `not_found`, `conflict`
/// (slug taken), `service_unavailable` (database away or saturated).
using tenants_actor = caf::typed_actor<
  caf::replies_to<create_atom, tenant_creation, audit_origin>::with<tenant_record>,
  caf::replies_to<caf::get_atom, std::string>::with<tenant_record>,
  caf::replies_to<list_atom, tenant_query>::with<tenant_page>,
  caf::replies_to<update_atom, std::string, tenant_update, audit_origin>::with<tenant_record>,
  caf::replies_to<caf::delete_atom, std::string, audit_origin>::with<tenant_record>>;

inline constexpr caf::atom_value tenants_key = caf::atom("tenants");

} // namespace troupe::protocol

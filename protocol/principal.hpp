#pragma once

// Who a /v1 request acts as (docs/auth.md "Principals"). Plain data: HTTP handlers carry it
// in their request context, so this header stays light.

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe::protocol {

/// The credential of a request, as the HTTP layer found it in `Authorization`.
struct credential {
  std::string kind; ///< "" (none), "jwt", "api_key" or "admin" (admin.token, already checked)
  std::string token;
  std::string ip; ///< the client's address: the anonymous rate-limit bucket is per address
};

/// The rate-limit headers of a /v1 response (API.md "Rate limits and quotas"): the bucket with
/// the fewest remaining requests, or the one that refused (`allowed` false).
struct rate_info {
  std::string bucket; ///< "principal", "tenant", "anonymous"; empty: no limit applied
  std::uint32_t limit = 0;
  std::uint32_t window_s = 0;
  std::uint32_t remaining = 0;
  std::uint32_t reset_s = 0;
  bool allowed = true;
  bool quota_exceeded = false; ///< allowed by the limits, but the monthly quota is spent
};

/// The authenticated principal of a request, or why its credential was refused.
struct principal {
  std::string type = "anonymous"; ///< user, api_key, admin or anonymous
  std::string id;                 ///< the user's or the API key's id
  std::string user_id;            ///< the user (for an API key: its creator)
  std::string session_id;         ///< access tokens: the session (`sid`)
  std::vector<std::string> permissions;
  std::string profile; ///< users: the API's User object as JSON text (GET /v1/users/me)
  /// Nonzero: the credential was refused with this `errc` (unauthenticated, token_expired,
  /// token_revoked) and the principal is anonymous. Public routes ignore it.
  std::uint8_t refused = 0;
  std::string detail; ///< why it was refused (safe to show the client)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, credential& x) {
  return f(caf::meta::type_name("credential"), x.kind, x.token, x.ip);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rate_info& x) {
  return f(caf::meta::type_name("rate_info"), x.bucket, x.limit, x.window_s, x.remaining, x.reset_s,
           x.allowed, x.quota_exceeded);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, principal& x) {
  return f(caf::meta::type_name("principal"), x.type, x.id, x.user_id, x.session_id, x.permissions,
           x.profile, x.refused, x.detail);
}

/// True if `granted` (permissions with `*` and `resource:*` wildcards) covers `wanted`.
bool permits(const std::vector<std::string>& granted, const std::string& wanted);

/// The permissions of the built-in roles among `roles` (API.md "Users and RBAC"), sorted and
/// without duplicates; unknown role names add nothing.
std::vector<std::string> builtin_permissions(const std::vector<std::string>& roles);

/// A custom role (docs/rbac.md): its own permissions and the roles it inherits.
struct role_definition {
  std::vector<std::string> permissions;
  std::vector<std::string> inherits;
};

/// A tenant's custom roles by name.
using role_catalog = std::map<std::string, role_definition>;

/// True for owner, admin, member and viewer.
bool is_builtin_role(const std::string& name);

/// The effective permissions of `roles` (built-in or custom, inherited transitively), sorted,
/// without duplicates; unknown names add nothing and a cycle stops where it closes.
std::vector<std::string> effective_permissions(const std::vector<std::string>& roles,
                                               const role_catalog& custom);

/// True if giving `name` the parents `inherits` would make a cycle in `custom` (a role
/// inheriting itself included).
bool inherits_cycle(const std::string& name, const std::vector<std::string>& inherits,
                    const role_catalog& custom);

/// True for a permission of the catalogue, `resource:*` of a catalogue resource, or `*`.
bool valid_permission(const std::string& p);

/// An opaque token that names its tenant (refresh tokens, `mfa_token`): base64url of the
/// tenant's and the object's UUIDs (16 bytes each) and 32 random bytes (86 characters).
std::string make_opaque_token(const std::string& tenant_id, const std::string& id);

/// The tenant and object ids inside an opaque token, or nullopt if it is not one.
std::optional<std::pair<std::string, std::string>> opaque_token_ids(std::string_view token);

/// The permission catalogue of API.md, in its order.
const std::vector<std::string>& permission_catalogue();

} // namespace troupe::protocol

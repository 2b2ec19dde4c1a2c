#pragma once

#include "http/handler.hpp"

#include <caf/fwd.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace troupe::http {

/// The tenant a /v1 request names (API.md "Tenancy and authentication"): the `X-Tenant`
/// header (a slug or an id), else the `{slug}` of a Host `{slug}.{base_domain}` (any port,
/// any letter case), else nothing (then the credential names it).
std::optional<std::string> tenant_key(const request& req, std::string_view base_domain);

/// The credential in `Authorization`: "admin" if it is admin.token (`admin_digest` is its
/// SHA-256; compared in constant time), "api_key" for `trp_…`, "jwt" for anything else that
/// looks like a compact JWS, "invalid" for any other value; kind "" if there is none.
protocol::credential credential_of(const request& req, const std::string& admin_digest);

/// The tenant a credential names without being verified: an access token's `tid` claim, or
/// the tenant inside the refresh token or `mfa_token` of the body of `POST /v1/auth/refresh`
/// or `/v1/auth/mfa/verify`. Only a routing hint: the tenant actor verifies the credential.
std::optional<std::string> credential_tenant(const request& req, const protocol::credential& c);

/// Resolves the tenant and authenticates the request through the directory and the tenant
/// actor (an API key without a named tenant is first looked up by the auth service):
/// unknown tenant → `not-found`, suspended → `tenant-suspended`, a credential of another
/// tenant → `tenant-mismatch`, no tenant named → `unauthenticated`, directory away →
/// `service-unavailable`. A refused credential is not a failure here: the principal carries
/// why, and the route's requirement decides.
tenant_resolver directory_resolver(caf::actor_system& sys, std::string base_domain,
                                   std::string admin_digest);

} // namespace troupe::http

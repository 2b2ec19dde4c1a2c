#pragma once

#include "http/handler.hpp"

#include <caf/fwd.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace troupe::http {

/// The tenant a /v1 request names (API.md "Tenancy and authentication"): the `X-Tenant`
/// header (a slug or an id), else the `{slug}` of a Host `{slug}.{base_domain}` (any port,
/// any letter case), else nothing (the credential's tenant, once credentials exist).
std::optional<std::string> tenant_key(const request& req, std::string_view base_domain);

/// Resolves through the directory actor: unknown → `not-found`, suspended →
/// `tenant-suspended`, directory away → `service-unavailable`, no tenant named →
/// `unauthenticated`.
tenant_resolver directory_resolver(caf::actor_system& sys, std::string base_domain);

} // namespace troupe::http

#pragma once

#include "http/router.hpp"

#include <caf/fwd.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace troupe::http {

/// What route handlers may use: the actor system (actors are found through its registry,
/// see protocol/actors.hpp) and static documents.
struct services {
  caf::actor_system* system = nullptr;
  /// SHA-256 of admin.token (32 bytes); the token itself is not kept here.
  std::string admin_token_digest;
  /// http.base-domain: a /v1 request to {slug}.{base_domain} names that tenant.
  std::string base_domain = "localhost";
};

/// Every endpoint of the server, one line each (the table is in routes.cpp).
std::shared_ptr<router> make_router(const services& svc);

/// The OpenAPI 3.1 document served at /openapi.json (docs/openapi.json, embedded at build).
std::string_view openapi_document();

} // namespace troupe::http

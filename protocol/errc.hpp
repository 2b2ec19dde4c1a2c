#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace troupe::protocol {

/// Every failure a client can see. Each value is exactly one API.md problem code; the
/// catalogue in errc.cpp gives its HTTP status, title and description. Append only.
enum class errc : std::uint8_t {
  bad_request = 1, // CAF error enums start at 1
  validation_failed,
  unauthenticated,
  invalid_credentials,
  token_expired,
  token_revoked,
  invalid_mfa_code,
  forbidden,
  tenant_mismatch,
  tenant_suspended,
  not_found,
  method_not_allowed,
  conflict,
  precondition_failed,
  rate_limited,
  quota_exceeded,
  idempotency_in_flight,
  idempotency_key_reuse,
  payload_too_large,
  unsupported_media_type,
  service_unavailable,
  internal,
  header_fields_too_large,
};

/// What the catalogue knows about one code.
struct problem_info {
  errc code;
  std::string_view name;        ///< the API.md code, e.g. "not-found"
  int status;                   ///< the HTTP status it answers with
  std::string_view title;       ///< short, stable, human title
  std::string_view description; ///< what it means and what the client can do
};

/// The catalogue entry of `code`.
const problem_info& info(errc code);

/// The catalogue entry named `name` ("not-found"), if any.
std::optional<errc> errc_from_name(std::string_view name);

/// Every catalogue entry, in enum order.
const std::vector<problem_info>& catalogue();

} // namespace troupe::protocol

#include "protocol/errc.hpp"

#include <cassert>

namespace troupe::protocol {

namespace {

std::vector<problem_info> make_catalogue() {
  return {
    {errc::bad_request, "bad-request", 400, "Bad request",
     "The request could not be understood: a malformed request line, header, query parameter or "
     "body. Fix the request before retrying."},
    {errc::validation_failed, "validation-failed", 400, "Request body is invalid",
     "The body is well-formed JSON but a field is missing, unknown or out of range. `errors` "
     "lists each problem with a JSON pointer to the field."},
    {errc::unauthenticated, "unauthenticated", 401, "Authentication required",
     "No credential, or a malformed one, was sent. Send `Authorization: Bearer <token>`."},
    {errc::invalid_credentials, "invalid-credentials", 401, "Invalid credentials",
     "The email and password do not match an account. The answer is the same whether or not the "
     "email exists."},
    {errc::token_expired, "token-expired", 401, "Access token expired",
     "The access token is past its `exp`. Obtain a new one with the refresh token."},
    {errc::token_revoked, "token-revoked", 401, "Credential revoked",
     "The session, refresh token or API key was revoked (logout, reuse of a spent refresh token, "
     "password change or key deletion). Log in again."},
    {errc::invalid_mfa_code, "invalid-mfa-code", 401, "Invalid MFA code",
     "The TOTP or recovery code is wrong, expired or already used."},
    {errc::forbidden, "forbidden", 403, "Permission denied",
     "The credential is valid but lacks the permission this route requires; "
     "`required_permission` names it."},
    {errc::tenant_mismatch, "tenant-mismatch", 403, "Credential belongs to another tenant",
     "The credential was issued by a different tenant than the one this request addresses."},
    {errc::tenant_suspended, "tenant-suspended", 403, "Tenant suspended",
     "The tenant is suspended by the platform operator; its API answers nothing else until it is "
     "reactivated."},
    {errc::not_found, "not-found", 404, "Not found",
     "No route or resource exists at this path, or it belongs to another tenant."},
    {errc::method_not_allowed, "method-not-allowed", 405, "Method not allowed",
     "The path exists but does not accept this method. The `Allow` header lists the methods it "
     "accepts."},
    {errc::conflict, "conflict", 409, "Conflict",
     "The request conflicts with the current state, for example a name or email already taken."},
    {errc::precondition_failed, "precondition-failed", 412, "Precondition failed",
     "The `If-Match` header does not match the resource's current `ETag`. Re-read and retry."},
    {errc::rate_limited, "rate-limited", 429, "Too many requests",
     "A rate limit was exceeded. Wait for the `Retry-After` seconds; the `RateLimit` headers name "
     "the bucket."},
    {errc::quota_exceeded, "quota-exceeded", 429, "Quota exceeded",
     "The tenant's monthly request quota is used up."},
    {errc::idempotency_in_flight, "idempotency-in-flight", 409, "Idempotent request in flight",
     "A request with the same `Idempotency-Key` is still being processed. Retry after "
     "`Retry-After`."},
    {errc::idempotency_key_reuse, "idempotency-key-reuse", 422,
     "Idempotency key reused with a different request",
     "This `Idempotency-Key` was already used with a different method, path or body."},
    {errc::payload_too_large, "payload-too-large", 413, "Payload too large",
     "The request body exceeds the server's `http.max-body-bytes` limit."},
    {errc::unsupported_media_type, "unsupported-media-type", 415, "Unsupported media type",
     "The body's `Content-Type` is not one this route accepts (JSON routes accept "
     "`application/json`)."},
    {errc::service_unavailable, "service-unavailable", 503, "Service unavailable",
     "The server is temporarily unable to handle the request (database down, saturated, or "
     "shutting down). Retry after `Retry-After`."},
    {errc::internal, "internal", 500, "Internal server error",
     "Something failed inside the server. Nothing internal is revealed; quote `request_id` to the "
     "operator, whose log has the cause."},
    {errc::header_fields_too_large, "header-fields-too-large", 431,
     "Request header fields too large",
     "The request line and headers together exceed the server's `http.max-header-bytes` limit."},
  };
}

} // namespace

const std::vector<problem_info>& catalogue() {
  static const std::vector<problem_info> entries = make_catalogue();
  return entries;
}

const problem_info& info(errc code) {
  const auto& entries = catalogue();
  const auto index = static_cast<std::size_t>(code) - 1;
  assert(index < entries.size() && entries[index].code == code);
  return entries[index];
}

std::optional<errc> errc_from_name(std::string_view name) {
  for (const auto& entry : catalogue()) {
    if (entry.name == name) {
      return entry.code;
    }
  }
  return std::nullopt;
}

} // namespace troupe::protocol

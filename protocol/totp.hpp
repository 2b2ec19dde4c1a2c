#pragma once

// Time-based one-time passwords (RFC 6238; API.md "Auth": SHA-1, 6 digits, 30 s, ±1 step).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::protocol::totp {

/// The code of time step `step` (HOTP, RFC 4226) for the raw `key`, `digits` long.
std::string code_at(std::string_view key, std::uint64_t step, unsigned digits = 6);

/// The time step containing `unix_seconds` (30-second steps from the Unix epoch).
inline std::uint64_t step_of(std::uint64_t unix_seconds, std::uint64_t period = 30) {
  return unix_seconds / period;
}

/// The time step whose code `code` is, among the current step and `window` steps either
/// side, compared in constant time; nullopt if none. The caller keeps the last accepted
/// step per user and refuses it and any earlier one, so that a code is accepted once.
std::optional<std::uint64_t> verify(std::string_view key, std::string_view code,
                                    std::uint64_t unix_seconds, unsigned window = 1,
                                    unsigned digits = 6);

/// The otpauth:// URI an authenticator app scans (Key Uri Format).
std::string otpauth_uri(std::string_view issuer, std::string_view account, std::string_view key);

} // namespace troupe::protocol::totp

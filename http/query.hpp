#pragma once

// Query strings of list endpoints (API.md Conventions: `limit`, `cursor`, filters).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace troupe::http {

/// The decoded parameters of a query string (`a=1&b=x%20y`; `+` is a space). nullopt with
/// `error` set on a malformed escape, a repeated name, or a name outside `allowed`.
std::optional<std::map<std::string, std::string>>
parse_query(std::string_view query, const std::set<std::string>& allowed, std::string& error);

/// `limit` (1–200, default 50) from parsed parameters; nullopt on a bad value.
std::optional<std::uint32_t> page_limit(const std::map<std::string, std::string>& params);

/// An opaque cursor: base64url of `position`.
std::string encode_cursor(std::string_view position);

/// Reverses `encode_cursor`; nullopt if it is not one.
std::optional<std::string> decode_cursor(std::string_view cursor);

/// True if `text` is an RFC 3339 date-time (`2026-01-02T03:04:05Z`, fractions and offsets
/// allowed).
bool is_rfc3339(std::string_view text);

/// The Unix time of an RFC 3339 date-time (fractions dropped), or nullopt if it is not one.
std::optional<std::int64_t> rfc3339_seconds(std::string_view text);

} // namespace troupe::http

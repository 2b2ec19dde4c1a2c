#pragma once

#include <string>
#include <string_view>

namespace troupe::protocol {

/// True if `id` is an acceptable client `X-Request-ID`: 1–128 characters of `[A-Za-z0-9._-]`.
bool valid_request_id(std::string_view id);

/// A new request id: a UUIDv7 string (time-ordered, 74 random bits). Thread-safe.
std::string new_request_id();

/// True if `text` has the canonical UUID shape (8-4-4-4-12 hex digits, either case).
bool is_uuid(std::string_view text);

/// A new UUIDv7 (RFC 9562) in its canonical 36-character form. Thread-safe.
std::string new_uuid_v7();

} // namespace troupe::protocol

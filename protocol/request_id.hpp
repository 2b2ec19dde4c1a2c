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

/// True if `value` is a W3C `traceparent` we pass on: version 00 form
/// `vv-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` in lower case, version not `ff`,
/// neither id all zeros (W3C Trace Context §3.2).
bool valid_traceparent(std::string_view value);

/// A new UUIDv7 (RFC 9562) in its canonical 36-character form. Thread-safe.
std::string new_uuid_v7();

} // namespace troupe::protocol

#pragma once

#include "protocol/errc.hpp"

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <string>

CAF_ERROR_CODE_ENUM(troupe::protocol::errc, "troupe")

namespace troupe::protocol {

/// The API.md code of `x`, e.g. "not-found".
std::string to_string(errc x);

/// The problem a client sees for `err`: our own codes map to themselves; an unreachable or
/// timed-out actor is `service_unavailable`; anything else is `internal`.
errc to_errc(const caf::error& err);

/// A log-friendly rendering of `err` that names our codes (CAF 0.17 prints only numbers).
std::string describe(const caf::error& err);

} // namespace troupe::protocol

#pragma once

#include "protocol/errc.hpp"

#include <string>
#include <utility>
#include <vector>

namespace troupe::protocol {

/// One field-level complaint inside a `validation-failed` problem.
struct field_error {
  std::string pointer; ///< RFC 6901 JSON pointer into the request body, e.g. "/password"
  std::string message;
};

/// An RFC 9457 problem as API.md shapes it. `type`, `code`, `title` and `status` come from
/// the catalogue entry of `code`; the rest describes this occurrence.
struct problem {
  errc code = errc::internal;
  std::string detail;
  std::string instance;   ///< the request path
  std::string request_id; ///< always set on responses
  std::vector<field_error> errors;
  /// Extra string members such as `required_permission`.
  std::vector<std::pair<std::string, std::string>> extensions;
};

/// The `application/problem+json` body of `p`, one JSON object.
std::string render_problem(const problem& p);

/// The `Content-Type` of problem responses.
inline constexpr const char* problem_content_type = "application/problem+json";

} // namespace troupe::protocol

#pragma once

#include "http/handler.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::http {

/// One endpoint: method, path template with `{name}` segments, and its handler.
struct route {
  verb method = verb::get;
  std::string path_template;
  handler_fn handler;
  std::string summary; ///< one line, for logs and docs
  /// What the route requires (API.md "Users and RBAC"): a permission such as "audit:read",
  /// "self" (a user's own access token), "public" (no credential) or "admin" (admin.token,
  /// platform routes). /v1 routes are guarded by it before their handler runs.
  std::string permission = "public";
  std::size_t metrics_index = 0; ///< set by the server when it registers the route's series
};

/// The outcome of matching a method and path against the table.
struct route_match {
  enum class outcome { found, not_found, method_not_allowed };
  outcome result = outcome::not_found;
  const route* matched = nullptr; ///< set when found
  std::string path_template;      ///< the best matching template (found and 405)
  std::vector<std::pair<std::string, std::string>> params;
  std::string allow; ///< e.g. "GET, HEAD, OPTIONS" (found and 405)
};

/// Maps (method, path) to a route. Literal segments beat parameters at the first position
/// where templates differ (`/v1/users/me` beats `/v1/users/{id}`); if the most specific
/// template lacks the method, less specific ones are tried before answering 405. A `GET`
/// route also answers `HEAD`. Immutable once built, so any thread may match concurrently.
class router {
public:
  /// Adds `r`. A duplicate (method, template) pair or a malformed template throws
  /// std::invalid_argument: the table is static data, so this is a start-up error.
  void add(route r);

  /// Matches a percent-encoded `path` (no query). Parameters are percent-decoded.
  route_match match(verb method, std::string_view path) const;

  /// Every route, in registration order.
  const std::vector<route>& routes() const {
    return routes_;
  }

  /// Mutable access for the server to set `metrics_index` before serving.
  std::vector<route>& routes() {
    return routes_;
  }

private:
  struct segment {
    std::string text; // literal text, or the parameter name
    bool is_param = false;
  };
  struct compiled {
    std::vector<segment> segments;
    std::size_t route_index = 0;
  };
  std::vector<route> routes_;
  std::vector<compiled> compiled_;
};

/// Decodes %XX escapes of one path segment; nullopt-like empty result with `ok == false`
/// on a malformed escape or a decoded NUL.
bool percent_decode(std::string_view in, std::string& out);

} // namespace troupe::http

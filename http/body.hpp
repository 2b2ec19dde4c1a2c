#pragma once

// Request bodies of JSON routes: the media type, parsing without exceptions, and field
// validation that collects every complaint into one 400 `validation-failed`.

#include "http/handler.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::http {

/// True if `content_type` is application/json (parameters such as charset allowed).
bool is_json_media_type(std::string_view content_type);

/// The JSON object in the body, or nullopt after answering the problem (415 for another
/// media type, 400 `bad-request` for invalid JSON, 400 `validation-failed` for a non-object).
std::optional<nlohmann::json> json_object_body(const request& req, const request_context& ctx,
                                               const reply_fn& reply);

/// True for a plausible email address (one '@', something either side, no spaces or
/// controls, at most 254 bytes).
bool valid_email(const std::string& email);

/// `limit` (1–200, default 50) and the decoded `cursor` (a UUID, or any non-empty text
/// without `uuid_cursor`) of a list's query, plus the parameters named in `extra` as given,
/// as `{"limit":n,"cursor":"…",…}`; nullopt after answering 400 `bad-request`.
std::optional<nlohmann::json> page_query(const request& req, const request_context& ctx,
                                         const reply_fn& reply,
                                         const std::set<std::string>& extra = {},
                                         bool uuid_cursor = true);

/// The path parameter `param` when it is a UUID, or nullopt after answering 404 `not_found`
/// with `missing` (what is not a UUID names nothing).
std::optional<std::string> uuid_param(const request& req, const request_context& ctx,
                                      const reply_fn& reply, const char* param,
                                      const char* missing);

/// Collects field errors, then answers 400 validation-failed if there were any.
class validator {
public:
  void error(std::string pointer, std::string message);

  /// Complains about every member of `object` not in `allowed` ("unknown field").
  void only(const nlohmann::json& object, const std::set<std::string>& allowed,
            const std::string& base);

  /// A string member of min..max characters (UTF-8 code points), or nullopt with an error.
  std::optional<std::string> text(const nlohmann::json& object, const std::string& key,
                                  const std::string& pointer, std::size_t min, std::size_t max,
                                  bool required);

  bool failed() const {
    return !errors_.empty();
  }

  response problem(const request& req, const request_context& ctx) const;

private:
  std::vector<protocol::field_error> errors_;
};

} // namespace troupe::http

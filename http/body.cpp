#include "http/body.hpp"

#include "http/query.hpp"
#include "protocol/request_id.hpp"

#include <algorithm>

namespace troupe::http {

using json = nlohmann::json;

bool is_json_media_type(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  auto media = content_type.substr(0, semicolon);
  while (!media.empty() && media.back() == ' ') {
    media.remove_suffix(1);
  }
  return iequals(media, "application/json");
}

// The JSON object in the body, or the problem response to send instead.
std::optional<json> json_object_body(const request& req, const request_context& ctx,
                                     const reply_fn& reply) {
  if (!is_json_media_type(req.header("Content-Type"))) {
    reply(problem_response(protocol::errc::unsupported_media_type, req, ctx,
                           "send the body as Content-Type: application/json"));
    return std::nullopt;
  }
  auto body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    reply(problem_response(protocol::errc::bad_request, req, ctx, "the body is not valid JSON"));
    return std::nullopt;
  }
  if (!body.is_object()) {
    reply(
      validation_problem(req, ctx, "the body must be a JSON object", {{"", "must be an object"}}));
    return std::nullopt;
  }
  return body;
}

bool valid_email(const std::string& email) {
  const auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= email.size()
      || email.find('@', at + 1) != std::string::npos || email.size() > 254) {
    return false;
  }
  return std::none_of(email.begin(), email.end(),
                      [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

void validator::error(std::string pointer, std::string message) {
  errors_.push_back({std::move(pointer), std::move(message)});
}

void validator::only(const json& object, const std::set<std::string>& allowed,
                     const std::string& base) {
  for (const auto& [key, value] : object.items()) {
    if (allowed.count(key) == 0) {
      error(base + '/' + key, "unknown field");
    }
  }
}

std::optional<std::string> validator::text(const json& object, const std::string& key,
                                           const std::string& pointer, std::size_t min,
                                           std::size_t max, bool required) {
  auto it = object.find(key);
  if (it == object.end()) {
    if (required) {
      error(pointer, "is required");
    }
    return std::nullopt;
  }
  if (!it->is_string()) {
    error(pointer, "must be a string");
    return std::nullopt;
  }
  auto value = it->get<std::string>();
  const auto chars = static_cast<std::size_t>(std::count_if(value.begin(), value.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
  if (chars < min || chars > max) {
    error(pointer, "must be " + std::to_string(min) + " to " + std::to_string(max) + " characters");
    return std::nullopt;
  }
  return value;
}

response validator::problem(const request& req, const request_context& ctx) const {
  return validation_problem(req, ctx, {}, errors_);
}

std::optional<std::string> uuid_param(const request& req, const request_context& ctx,
                                      const reply_fn& reply, const char* param,
                                      const char* missing) {
  const auto& id = ctx.param(param);
  if (!protocol::is_uuid(id)) {
    reply(problem_response(protocol::errc::not_found, req, ctx, missing));
    return std::nullopt;
  }
  return id;
}

std::optional<json> page_query(const request& req, const request_context& ctx,
                               const reply_fn& reply, const std::set<std::string>& extra,
                               bool uuid_cursor) {
  std::string error;
  auto allowed = extra;
  allowed.insert("limit");
  allowed.insert("cursor");
  auto params = parse_query(req.query, allowed, error);
  if (!params) {
    reply(problem_response(protocol::errc::bad_request, req, ctx, error));
    return std::nullopt;
  }
  auto limit = page_limit(*params);
  if (!limit) {
    reply(problem_response(protocol::errc::bad_request, req, ctx,
                           "limit must be an integer from 1 to 200"));
    return std::nullopt;
  }
  json out{{"limit", *limit}};
  if (auto cursor = params->find("cursor"); cursor != params->end()) {
    auto id = decode_cursor(cursor->second);
    if (!id || (uuid_cursor ? !protocol::is_uuid(*id) : id->empty())) {
      reply(problem_response(protocol::errc::bad_request, req, ctx, "invalid cursor"));
      return std::nullopt;
    }
    out["cursor"] = *id;
  }
  for (const auto& name : extra) {
    if (auto p = params->find(name); p != params->end()) {
      out[name] = p->second;
    }
  }
  return out;
}

} // namespace troupe::http

#include "http/handler.hpp"

#include <array>
#include <strings.h>

namespace troupe::http {

namespace {

constexpr std::array<std::string_view, 8> verb_names{"GET",   "HEAD",   "POST",    "PUT",
                                                     "PATCH", "DELETE", "OPTIONS", "OTHER"};

} // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string ascii_lower(std::string_view s) {
  std::string out{s};
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string_view to_string(verb v) {
  return verb_names.at(static_cast<std::size_t>(v));
}

verb verb_from_string(std::string_view name) {
  for (std::size_t i = 0; i + 1 < verb_names.size(); ++i) {
    if (verb_names[i] == name) {
      return static_cast<verb>(i);
    }
  }
  return verb::other;
}

std::string_view request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return {};
}

const std::string& request_context::param(std::string_view name) const {
  static const std::string none;
  for (const auto& [key, value] : params) {
    if (key == name) {
      return value;
    }
  }
  return none;
}

response json_response(int status, std::string body) {
  response res;
  res.status = status;
  res.body = std::move(body);
  return res;
}

response validation_problem(const request& req, const request_context& ctx, std::string detail,
                            std::vector<protocol::field_error> errors) {
  protocol::problem p;
  p.code = protocol::errc::validation_failed;
  p.detail = std::move(detail);
  p.instance = req.path;
  p.request_id = ctx.request_id;
  p.errors = std::move(errors);
  return problem_response(p);
}

response problem_response(const protocol::problem& p) {
  response res;
  res.status = protocol::info(p.code).status;
  res.content_type = protocol::problem_content_type;
  res.body = protocol::render_problem(p);
  return res;
}

response problem_response(protocol::errc code, const request& req, const request_context& ctx,
                          std::string detail) {
  protocol::problem p;
  p.code = code;
  p.detail = std::move(detail);
  p.instance = req.path;
  p.request_id = ctx.request_id;
  return problem_response(p);
}

} // namespace troupe::http

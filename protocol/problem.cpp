#include "protocol/problem.hpp"

#include <nlohmann/json.hpp>

namespace troupe::protocol {

std::string render_problem(const problem& p) {
  const auto& entry = info(p.code);
  const std::string name{entry.name};
  // ordered_json keeps the member order of API.md's example, which reads better in logs.
  nlohmann::ordered_json body{
    {"type", "/problems/" + name},
    {"code", name},
    {"title", std::string{entry.title}},
    {"status", entry.status},
  };
  if (!p.detail.empty()) {
    body["detail"] = p.detail;
  }
  body["instance"] = p.instance;
  body["request_id"] = p.request_id;
  if (!p.errors.empty()) {
    auto& errors = body["errors"] = nlohmann::ordered_json::array();
    for (const auto& e : p.errors) {
      errors.push_back({{"pointer", e.pointer}, {"message", e.message}});
    }
  }
  for (const auto& [key, value] : p.extensions) {
    body[key] = value;
  }
  // `replace` keeps invalid UTF-8 from a client (say, in a path) from throwing here.
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace troupe::protocol

#include "storage/arrays.hpp"

#include <nlohmann/json.hpp>

namespace troupe::storage {

std::vector<std::string> text_array(std::string_view json_text) {
  std::vector<std::string> out;
  auto parsed = nlohmann::json::parse(json_text, nullptr, false);
  if (parsed.is_array()) {
    for (const auto& item : parsed) {
      if (item.is_string()) {
        out.push_back(item.get<std::string>());
      }
    }
  }
  return out;
}

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

} // namespace troupe::storage

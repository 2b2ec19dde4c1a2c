#include "config/value_syntax.hpp"

#include <cstdint>
#include <cstdio>

namespace troupe::config {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// Reads a quoted string starting at raw[pos] == '"'; on success, pos is one past the closing
// quote.
std::optional<std::string> read_quoted(std::string_view raw, std::size_t& pos) {
  std::string text;
  for (auto i = pos + 1; i < raw.size(); ++i) {
    const auto c = raw[i];
    if (c == '"') {
      pos = i + 1;
      return text;
    }
    if (c == '\\') {
      if (i + 1 == raw.size() || (raw[i + 1] != '"' && raw[i + 1] != '\\')) {
        return std::nullopt;
      }
      ++i;
      text += raw[i];
      continue;
    }
    text += c;
  }
  return std::nullopt; // no closing quote
}

// Reads a bare list element: everything up to the next ',' or ']', without surrounding blanks.
std::optional<std::string> read_bare_element(std::string_view raw, std::size_t& pos) {
  const auto begin = pos;
  while (pos < raw.size() && raw[pos] != ',' && raw[pos] != ']') {
    if (raw[pos] == '"' || raw[pos] == '[') {
      return std::nullopt;
    }
    ++pos;
  }
  auto end = pos;
  while (end > begin && is_blank(raw[end - 1])) {
    --end;
  }
  if (end == begin) {
    return std::nullopt; // an empty element: "[1,,2]" or "[1,]"
  }
  return std::string{raw.substr(begin, end - begin)};
}

std::optional<std::vector<list_element>> read_list(std::string_view raw) {
  std::vector<list_element> elements;
  std::size_t pos = 1; // past '['
  const auto skip_blanks = [&] {
    while (pos < raw.size() && is_blank(raw[pos])) {
      ++pos;
    }
  };
  skip_blanks();
  if (pos < raw.size() && raw[pos] == ']') {
    ++pos;
    return pos == raw.size() ? std::optional{elements} : std::nullopt;
  }
  for (;;) {
    skip_blanks();
    if (pos == raw.size()) {
      return std::nullopt;
    }
    if (raw[pos] == '"') {
      auto text = read_quoted(raw, pos);
      if (!text) {
        return std::nullopt;
      }
      elements.push_back({std::move(*text), true});
    } else {
      auto text = read_bare_element(raw, pos);
      if (!text) {
        return std::nullopt;
      }
      elements.push_back({std::move(*text), false});
    }
    skip_blanks();
    if (pos == raw.size()) {
      return std::nullopt; // no closing bracket
    }
    if (raw[pos] == ']') {
      ++pos;
      break;
    }
    if (raw[pos] != ',') {
      return std::nullopt;
    }
    ++pos;
  }
  if (pos != raw.size()) {
    return std::nullopt; // text after the closing bracket
  }
  return elements;
}

} // namespace

std::optional<value> parse_value(std::string_view raw) {
  value result;
  if (!raw.empty() && raw.front() == '"') {
    std::size_t pos = 0;
    auto text = read_quoted(raw, pos);
    if (!text || pos != raw.size()) {
      return std::nullopt;
    }
    result.type = value::kind::quoted;
    result.text = std::move(*text);
    return result;
  }
  if (!raw.empty() && raw.front() == '[') {
    auto elements = read_list(raw);
    if (!elements) {
      return std::nullopt;
    }
    result.type = value::kind::list;
    result.elements = std::move(*elements);
    return result;
  }
  result.text = std::string{raw};
  return result;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max) {
  if (text.empty()) {
    return std::nullopt;
  }
  std::uint64_t result = 0;
  for (const auto c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (digit > max || result > (max - digit) / 10) {
      return std::nullopt; // result * 10 + digit > max, also guards against overflow
    }
    result = result * 10 + digit;
  }
  return result;
}

std::string quote(std::string_view text) {
  std::string result = "\"";
  for (const auto c : text) {
    switch (c) {
    case '"':
      result += "\\\"";
      break;
    case '\\':
      result += "\\\\";
      break;
    case '\n':
      result += "\\n";
      break;
    case '\r':
      result += "\\r";
      break;
    case '\t':
      result += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
        result += buf;
      } else {
        result += c;
      }
    }
  }
  result += '"';
  return result;
}

} // namespace troupe::config

#include "protocol/json_schema.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <regex>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace troupe::protocol::json_schema {

using nlohmann::json;

namespace {

// At most this many `enum` values are listed in a message.
constexpr std::size_t max_enum_listed = 10;

enum type_bit : unsigned {
  object_bit = 1U << 0U,
  array_bit = 1U << 1U,
  string_bit = 1U << 2U,
  integer_bit = 1U << 3U,
  number_bit = 1U << 4U,
  boolean_bit = 1U << 5U,
  null_bit = 1U << 6U,
};

struct type_name {
  const char* name;
  unsigned bit;
  const char* noun; // what a message says the value must be
};

constexpr type_name type_names[] = {
  {"object", object_bit, "an object"}, {"array", array_bit, "an array"},
  {"string", string_bit, "a string"},  {"integer", integer_bit, "an integer"},
  {"number", number_bit, "a number"},  {"boolean", boolean_bit, "a boolean"},
  {"null", null_bit, "null"},
};

enum class format { none, date_time, email, uuid };

struct pattern {
  std::string source;
  std::regex regex;
};

// One compiled (sub)schema. Absent keywords are empty optionals, null pointers or zero.
struct node {
  bool never = false;       // the schema `false`, or `additionalProperties: false`
  unsigned types = 0;       // type_bit set; 0: any type
  std::string type_message; // "must be a string or null"
  std::map<std::string, std::unique_ptr<node>, std::less<>> properties;
  std::vector<std::string> required;
  std::unique_ptr<node> additional; // null: any additional property is fine
  std::unique_ptr<node> items;
  std::vector<std::string> enum_values; // canonical forms
  std::string enum_message;
  std::optional<std::string> const_value; // canonical form
  std::string const_message;
  std::optional<json> minimum;
  std::optional<json> maximum;
  std::optional<json> exclusive_minimum;
  std::optional<json> exclusive_maximum;
  std::optional<std::uint64_t> min_length;
  std::optional<std::uint64_t> max_length;
  std::optional<std::uint64_t> min_items;
  std::optional<std::uint64_t> max_items;
  std::optional<std::uint64_t> min_properties;
  std::optional<std::uint64_t> max_properties;
  std::optional<pattern> match;
  bool unique_items = false;
  format checked_format = format::none;
};

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

void append_escaped(std::string& out, std::string_view token) {
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
}

// A serialization in which two values are equal exactly when JSON Schema calls them equal:
// numbers by mathematical value (1 equals 1.0, -0.0 equals 0), objects regardless of member order
// (nlohmann's objects are sorted maps). Recursion is bounded by the depth guard for instances
// and by the developer's schema for enum and const values.
void canonical(const json& value, std::string& out) {
  switch (value.type()) {
  case json::value_t::null:
    out += "null";
    return;
  case json::value_t::boolean:
    out += value.get<bool>() ? "true" : "false";
    return;
  case json::value_t::number_integer:
    out += std::to_string(value.get<std::int64_t>());
    return;
  case json::value_t::number_unsigned:
    out += std::to_string(value.get<std::uint64_t>());
    return;
  case json::value_t::number_float: {
    const double d = value.get<double>();
    if (std::isfinite(d) && std::floor(d) == d) {
      if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        out += std::to_string(static_cast<std::int64_t>(d));
        return;
      }
      if (d > 0 && d < 18446744073709551616.0) {
        out += std::to_string(static_cast<std::uint64_t>(d));
        return;
      }
    }
    out += dump(value);
    return;
  }
  case json::value_t::string:
    out += dump(value);
    return;
  case json::value_t::array: {
    out += '[';
    bool first = true;
    for (const auto& element : value) {
      if (!first) {
        out += ',';
      }
      first = false;
      canonical(element, out);
    }
    out += ']';
    return;
  }
  case json::value_t::object: {
    out += '{';
    bool first = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!first) {
        out += ',';
      }
      first = false;
      out += dump(json(it.key()));
      out += ':';
      canonical(it.value(), out);
    }
    out += '}';
    return;
  }
  case json::value_t::binary:
  case json::value_t::discarded:
    out += dump(value);
    return;
  }
}

std::string canonical(const json& value) {
  std::string out;
  canonical(value, out);
  return out;
}

bool integral(const json& value) {
  if (value.is_number_integer()) {
    return true;
  }
  if (!value.is_number_float()) {
    return false;
  }
  const double d = value.get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

bool has_type(const json& value, unsigned types) {
  switch (value.type()) {
  case json::value_t::null:
    return (types & null_bit) != 0;
  case json::value_t::boolean:
    return (types & boolean_bit) != 0;
  case json::value_t::string:
    return (types & string_bit) != 0;
  case json::value_t::array:
    return (types & array_bit) != 0;
  case json::value_t::object:
    return (types & object_bit) != 0;
  case json::value_t::number_integer:
  case json::value_t::number_unsigned:
  case json::value_t::number_float:
    return (types & number_bit) != 0 || ((types & integer_bit) != 0 && integral(value));
  case json::value_t::binary:
  case json::value_t::discarded:
    return false;
  }
  return false;
}

long double as_long_double(const json& number) {
  if (number.is_number_unsigned()) {
    return static_cast<long double>(number.get<std::uint64_t>());
  }
  if (number.is_number_integer()) {
    return static_cast<long double>(number.get<std::int64_t>());
  }
  return static_cast<long double>(number.get<double>());
}

// <0, 0 or >0 as a < b, a == b or a > b; exact for any two 64-bit integers.
int compare(const json& a, const json& b) {
  if (a.is_number_float() || b.is_number_float()) {
    const auto x = as_long_double(a);
    const auto y = as_long_double(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  const bool a_unsigned = a.is_number_unsigned();
  const bool b_unsigned = b.is_number_unsigned();
  if (!a_unsigned && !b_unsigned) {
    const auto x = a.get<std::int64_t>();
    const auto y = b.get<std::int64_t>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (!a_unsigned && a.get<std::int64_t>() < 0) {
    return -1;
  }
  if (!b_unsigned && b.get<std::int64_t>() < 0) {
    return 1;
  }
  const auto x = a.get<std::uint64_t>();
  const auto y = b.get<std::uint64_t>();
  return x < y ? -1 : (x > y ? 1 : 0);
}

// Code points of UTF-8 text: every byte that does not continue a sequence.
std::uint64_t code_points(std::string_view text) {
  std::uint64_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) {
      ++n;
    }
  }
  return n;
}

std::string count(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// -- formats ------------------------------------------------------------------

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// `width` decimal digits at `pos` into `out`.
bool digits(std::string_view s, std::size_t pos, std::size_t width, int& out) {
  if (pos + width > s.size()) {
    return false;
  }
  out = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (!is_digit(s[i])) {
      return false;
    }
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

int days_in_month(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

// RFC 3339 `date-time`: 2024-02-29T23:59:60.5+01:00 (a leap second only at 23:59 UTC).
bool valid_date_time(std::string_view s) {
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month)
      || s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't')
      || !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':'
      || !digits(s, 17, 2, second)) {
    return false;
  }
  std::size_t pos = 19;
  if (s[pos] == '.') {
    const auto start = ++pos;
    while (pos < s.size() && is_digit(s[pos])) {
      ++pos;
    }
    if (pos == start) {
      return false;
    }
  }
  if (pos >= s.size()) {
    return false;
  }
  int offset = 0; // minutes east of UTC
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int offset_hour = 0;
    int offset_minute = 0;
    if (!digits(s, pos + 1, 2, offset_hour) || pos + 3 >= s.size() || s[pos + 3] != ':'
        || !digits(s, pos + 4, 2, offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return false;
    }
    offset = (s[pos] == '+' ? 1 : -1) * (offset_hour * 60 + offset_minute);
    pos += 6;
  } else {
    return false;
  }
  if (pos != s.size() || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)
      || hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  if (second == 60) {
    const int utc = ((hour * 60 + minute - offset) % 1440 + 1440) % 1440;
    return utc == 23 * 60 + 59;
  }
  return true;
}

bool atext(char c) {
  return is_alnum(c) || std::string_view("!#$%&'*+/=?^_`{|}~-").find(c) != std::string_view::npos;
}

bool valid_local_part(std::string_view local) {
  if (local.empty() || local.size() > 64) {
    return false;
  }
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') {
      return false;
    }
    const auto inside = local.substr(1, local.size() - 2);
    for (std::size_t i = 0; i < inside.size(); ++i) {
      const auto c = static_cast<unsigned char>(inside[i]);
      if (c < 0x20 || c > 0x7E) {
        return false;
      }
      if (c == '\\') {
        if (++i == inside.size()) {
          return false;
        }
      } else if (c == '"') {
        return false;
      }
    }
    return true;
  }
  if (local.front() == '.' || local.back() == '.') {
    return false;
  }
  for (std::size_t i = 0; i < local.size(); ++i) {
    if (local[i] == '.') {
      if (local[i + 1] == '.') {
        return false;
      }
    } else if (!atext(local[i])) {
      return false;
    }
  }
  return true;
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t pos = 0;
  while (true) {
    const auto start = pos;
    int value = 0;
    while (pos < s.size() && is_digit(s[pos]) && pos - start < 3) {
      value = value * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start || value > 255 || (pos - start > 1 && s[start] == '0')) {
      return false;
    }
    if (++parts == 4) {
      return pos == s.size();
    }
    if (pos >= s.size() || s[pos] != '.') {
      return false;
    }
    ++pos;
  }
}

bool valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) {
    return false;
  }
  if (domain.front() == '[') {
    if (domain.back() != ']') {
      return false;
    }
    const auto literal = domain.substr(1, domain.size() - 2);
    if (literal.rfind("IPv6:", 0) == 0) {
      const auto address = literal.substr(5);
      if (address.empty()) {
        return false;
      }
      for (char c : address) {
        if (!is_hex(c) && c != ':' && c != '.') {
          return false;
        }
      }
      return true;
    }
    return valid_ipv4(literal);
  }
  std::size_t start = 0;
  while (true) {
    auto end = domain.find('.', start);
    if (end == std::string_view::npos) {
      end = domain.size();
    }
    const auto label = domain.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!is_alnum(c) && c != '-') {
        return false;
      }
    }
    if (end == domain.size()) {
      return true;
    }
    start = end + 1;
  }
}

// RFC 5321 `email` (ASCII; `idn-email` is not checked): local part, `@`, domain or literal.
bool valid_email(std::string_view s) {
  const auto at = s.rfind('@');
  return at != std::string_view::npos && valid_local_part(s.substr(0, at))
         && valid_domain(s.substr(at + 1));
}

// RFC 4122 textual form, any version, either case.
bool valid_uuid(std::string_view s) {
  if (s.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) {
      return false;
    }
  }
  return true;
}

// -- compiling ----------------------------------------------------------------

std::optional<std::uint64_t> non_negative_integer(const json& value) {
  if (value.is_number_unsigned()) {
    return value.get<std::uint64_t>();
  }
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    return n >= 0 ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(n)) : std::nullopt;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d >= 0 && d < 18446744073709551616.0 && std::floor(d) == d) {
      return static_cast<std::uint64_t>(d);
    }
  }
  return std::nullopt;
}

class compiler {
public:
  // Compiles `schema` into `out`; the reason it cannot, with its location, in `error`.
  bool build(const json& schema, node& out, std::size_t depth) {
    if (depth > max_depth) {
      return fail("the schema is nested too deeply");
    }
    if (schema.is_boolean()) {
      out.never = !schema.get<bool>();
      return true;
    }
    if (!schema.is_object()) {
      return fail("a schema must be an object or a boolean");
    }
    for (auto it = schema.begin(); it != schema.end(); ++it) {
      if (!keyword(it.key(), it.value(), out, depth)) {
        return false;
      }
    }
    return true;
  }

  std::string error;

private:
  bool fail(const std::string& what) {
    error = what + " at #" + at_;
    return false;
  }

  bool fail(const std::string& key, const std::string& what) {
    return fail("\"" + key + "\" " + what);
  }

  void enter(std::string_view token) {
    at_ += '/';
    append_escaped(at_, token);
  }

  // Compiles the subschema at `token` (below the current location) into `out`.
  bool sub(std::string_view token, const json& schema, std::unique_ptr<node>& out,
           std::size_t depth) {
    const auto mark = at_.size();
    enter(token);
    out = std::make_unique<node>();
    if (!build(schema, *out, depth + 1)) {
      return false;
    }
    at_.resize(mark);
    return true;
  }

  std::optional<std::uint64_t> bound_of(const std::string& key, const json& value) {
    auto n = non_negative_integer(value);
    if (!n) {
      fail(key, "must be a non-negative integer");
    }
    return n;
  }

  bool type(const std::string& key, const json& value, node& out) {
    std::vector<std::string> names;
    if (value.is_string()) {
      names.push_back(value.get<std::string>());
    } else if (value.is_array() && !value.empty()) {
      for (const auto& name : value) {
        if (!name.is_string()) {
          return fail(key, "must be a type name or a non-empty array of them");
        }
        names.push_back(name.get<std::string>());
      }
    } else {
      return fail(key, "must be a type name or a non-empty array of them");
    }
    std::vector<const char*> nouns;
    for (const auto& name : names) {
      const type_name* found = nullptr;
      for (const auto& t : type_names) {
        if (name == t.name) {
          found = &t;
        }
      }
      if (found == nullptr) {
        return fail("unknown type " + dump(json(name)));
      }
      if ((out.types & found->bit) != 0) {
        return fail(key, "lists a type twice");
      }
      out.types |= found->bit;
      nouns.push_back(found->noun);
    }
    out.type_message = "must be ";
    for (std::size_t i = 0; i < nouns.size(); ++i) {
      if (i > 0) {
        out.type_message += i + 1 == nouns.size() ? " or " : ", ";
      }
      out.type_message += nouns[i];
    }
    return true;
  }

  // Errors about a keyword's own value name the schema holding it.
  bool keyword(const std::string& key, const json& value, node& out, std::size_t depth) {
    if (key == "type") {
      return type(key, value, out);
    }
    if (key == "properties") {
      if (!value.is_object()) {
        return fail(key, "must be an object");
      }
      const auto mark = at_.size();
      enter(key);
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!sub(it.key(), it.value(), out.properties[it.key()], depth)) {
          return false;
        }
      }
      at_.resize(mark);
      return true;
    }
    if (key == "required") {
      if (!value.is_array()) {
        return fail(key, "must be an array of strings");
      }
      for (const auto& name : value) {
        if (!name.is_string()) {
          return fail(key, "must be an array of strings");
        }
        const auto& text = name.get_ref<const std::string&>();
        for (const auto& seen : out.required) {
          if (seen == text) {
            return fail(key, "lists \"" + text + "\" twice");
          }
        }
        out.required.push_back(text);
      }
      return true;
    }
    if (key == "additionalProperties") {
      if (value.is_boolean() && value.get<bool>()) {
        return true; // the default
      }
      return sub(key, value, out.additional, depth);
    }
    if (key == "items") {
      if (value.is_array()) {
        return fail(key, "must be a schema (2020-12: tuples are \"prefixItems\", unsupported)");
      }
      return sub(key, value, out.items, depth);
    }
    if (key == "enum") {
      if (!value.is_array() || value.empty()) {
        return fail(key, "must be a non-empty array");
      }
      out.enum_message = "must be one of: ";
      for (std::size_t i = 0; i < value.size(); ++i) {
        out.enum_values.push_back(canonical(value[i]));
        if (i == max_enum_listed) {
          out.enum_message += ", ...";
        } else if (i < max_enum_listed) {
          out.enum_message += (i > 0 ? ", " : "") + dump(value[i]);
        }
      }
      return true;
    }
    if (key == "const") {
      out.const_value = canonical(value);
      out.const_message = "must be " + dump(value);
      return true;
    }
    if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum"
        || key == "exclusiveMaximum") {
      if (!value.is_number()) {
        return fail(key, "must be a number");
      }
      auto& bound = key == "minimum"            ? out.minimum
                    : key == "maximum"          ? out.maximum
                    : key == "exclusiveMinimum" ? out.exclusive_minimum
                                                : out.exclusive_maximum;
      bound = value;
      return true;
    }
    if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems"
        || key == "minProperties" || key == "maxProperties") {
      auto n = bound_of(key, value);
      if (!n) {
        return false;
      }
      auto& bound = key == "minLength"       ? out.min_length
                    : key == "maxLength"     ? out.max_length
                    : key == "minItems"      ? out.min_items
                    : key == "maxItems"      ? out.max_items
                    : key == "minProperties" ? out.min_properties
                                             : out.max_properties;
      bound = n;
      return true;
    }
    if (key == "pattern") {
      if (!value.is_string()) {
        return fail(key, "must be a string");
      }
      const auto& source = value.get_ref<const std::string&>();
      try {
        out.match = pattern{source, std::regex(source, std::regex::ECMAScript)};
      } catch (const std::regex_error& e) {
        return fail("invalid pattern " + dump(value) + " (" + e.what() + ")");
      }
      return true;
    }
    if (key == "uniqueItems") {
      if (!value.is_boolean()) {
        return fail(key, "must be a boolean");
      }
      out.unique_items = value.get<bool>();
      return true;
    }
    if (key == "format") {
      if (!value.is_string()) {
        return fail(key, "must be a string");
      }
      const auto& name = value.get_ref<const std::string&>();
      out.checked_format = name == "date-time" ? format::date_time
                           : name == "email"   ? format::email
                           : name == "uuid"    ? format::uuid
                                               : format::none;
      return true;
    }
    if (key == "$schema" || key == "$id" || key == "$comment" || key == "title"
        || key == "description") {
      return value.is_string() || fail(key, "must be a string");
    }
    if (key == "deprecated" || key == "readOnly" || key == "writeOnly") {
      return value.is_boolean() || fail(key, "must be a boolean");
    }
    if (key == "examples") {
      return value.is_array() || fail(key, "must be an array");
    }
    if (key == "default") {
      return true;
    }
    return fail("unsupported keyword " + dump(json(key)));
  }

  std::string at_; // the schema location being compiled, a JSON pointer
};

// -- validating ---------------------------------------------------------------

// One step of the instance location: a member name or an array index.
struct segment {
  const std::string* key = nullptr;
  std::size_t index = 0;
};

std::string to_pointer(const std::vector<segment>& path) {
  std::string out;
  for (const auto& step : path) {
    out += '/';
    if (step.key != nullptr) {
      append_escaped(out, *step.key);
    } else {
      out += std::to_string(step.index);
    }
  }
  return out;
}

// True, and the path to it in `path`, if a container below `max_depth` sits in `value` (at
// `level` containers deep, itself included). Recursion stops at max_depth + 1 levels.
bool too_deep(const json& value, std::size_t level, std::vector<segment>& path) {
  if (!value.is_structured()) {
    return false;
  }
  if (level > max_depth) {
    return true;
  }
  if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      path.push_back({nullptr, i});
      if (too_deep(value[i], level + 1, path)) {
        return true;
      }
      path.pop_back();
    }
    return false;
  }
  for (auto it = value.begin(); it != value.end(); ++it) {
    path.push_back({&it.key(), 0});
    if (too_deep(it.value(), level + 1, path)) {
      return true;
    }
    path.pop_back();
  }
  return false;
}

class checker {
public:
  explicit checker(std::size_t max) : max_(max) {}

  void check(const node& schema, const json& value) {
    if (full()) {
      return;
    }
    if (schema.never) {
      add("is not allowed");
      return;
    }
    if (schema.types != 0 && !has_type(value, schema.types)) {
      add(schema.type_message);
      return;
    }
    if (schema.const_value && canonical(value) != *schema.const_value) {
      add(schema.const_message);
    }
    if (!schema.enum_values.empty()) {
      const auto form = canonical(value);
      bool found = false;
      for (const auto& allowed : schema.enum_values) {
        found = found || allowed == form;
      }
      if (!found) {
        add(schema.enum_message);
      }
    }
    if (value.is_number()) {
      check_number(schema, value);
    } else if (value.is_string()) {
      check_string(schema, value.get_ref<const std::string&>());
    } else if (value.is_array()) {
      check_array(schema, value);
    } else if (value.is_object()) {
      check_object(schema, value);
    }
  }

  std::vector<violation> out;

private:
  bool full() const {
    return out.size() >= max_;
  }

  void add(std::string message) {
    if (!full()) {
      out.push_back({to_pointer(path_), std::move(message)});
    }
  }

  void check_number(const node& schema, const json& value) {
    if (schema.minimum && compare(value, *schema.minimum) < 0) {
      add("must be at least " + dump(*schema.minimum));
    }
    if (schema.maximum && compare(value, *schema.maximum) > 0) {
      add("must be at most " + dump(*schema.maximum));
    }
    if (schema.exclusive_minimum && compare(value, *schema.exclusive_minimum) <= 0) {
      add("must be greater than " + dump(*schema.exclusive_minimum));
    }
    if (schema.exclusive_maximum && compare(value, *schema.exclusive_maximum) >= 0) {
      add("must be less than " + dump(*schema.exclusive_maximum));
    }
  }

  void check_string(const node& schema, const std::string& text) {
    if (schema.min_length || schema.max_length) {
      const auto n = code_points(text);
      if (schema.min_length && n < *schema.min_length) {
        add("must have at least " + count(*schema.min_length, "character", "characters"));
      }
      if (schema.max_length && n > *schema.max_length) {
        add("must have at most " + count(*schema.max_length, "character", "characters"));
      }
    }
    if (schema.match) {
      if (text.size() > max_pattern_subject) {
        add("is too long to match pattern " + schema.match->source + " (at most "
            + std::to_string(max_pattern_subject) + " bytes)");
      } else {
        try {
          if (!std::regex_search(text, schema.match->regex)) {
            add("must match pattern " + schema.match->source);
          }
        } catch (const std::regex_error&) { // error_complexity or error_stack
          add("could not be matched against pattern " + schema.match->source);
        }
      }
    }
    switch (schema.checked_format) {
    case format::none:
      break;
    case format::date_time:
      if (!valid_date_time(text)) {
        add("must be a date-time (RFC 3339, e.g. 2024-05-01T12:00:00Z)");
      }
      break;
    case format::email:
      if (!valid_email(text)) {
        add("must be an email address");
      }
      break;
    case format::uuid:
      if (!valid_uuid(text)) {
        add("must be a UUID");
      }
      break;
    }
  }

  void check_array(const node& schema, const json& value) {
    const auto n = static_cast<std::uint64_t>(value.size());
    if (schema.min_items && n < *schema.min_items) {
      add("must have at least " + count(*schema.min_items, "item", "items"));
    }
    if (schema.max_items && n > *schema.max_items) {
      add("must have at most " + count(*schema.max_items, "item", "items"));
    }
    if (schema.unique_items) {
      // Canonical forms make this linear; a pairwise == would be quadratic in the array size.
      std::unordered_map<std::string, std::size_t> seen;
      for (std::size_t i = 0; i < value.size() && !full(); ++i) {
        auto [it, fresh] = seen.emplace(canonical(value[i]), i);
        if (!fresh) {
          path_.push_back({nullptr, i});
          add("is a duplicate of item " + std::to_string(it->second));
          path_.pop_back();
        }
      }
    }
    if (schema.items) {
      for (std::size_t i = 0; i < value.size() && !full(); ++i) {
        path_.push_back({nullptr, i});
        check(*schema.items, value[i]);
        path_.pop_back();
      }
    }
  }

  void check_object(const node& schema, const json& value) {
    const auto n = static_cast<std::uint64_t>(value.size());
    if (schema.min_properties && n < *schema.min_properties) {
      add("must have at least " + count(*schema.min_properties, "property", "properties"));
    }
    if (schema.max_properties && n > *schema.max_properties) {
      add("must have at most " + count(*schema.max_properties, "property", "properties"));
    }
    for (const auto& name : schema.required) {
      if (value.find(name) == value.end()) {
        path_.push_back({&name, 0});
        add("is required");
        path_.pop_back();
      }
    }
    for (auto it = value.begin(); it != value.end() && !full(); ++it) {
      const auto found = schema.properties.find(it.key());
      const node* member
        = found != schema.properties.end() ? found->second.get() : schema.additional.get();
      if (member != nullptr) {
        path_.push_back({&it.key(), 0});
        check(*member, it.value());
        path_.pop_back();
      }
    }
  }

  std::size_t max_;
  std::vector<segment> path_;
};

} // namespace

struct validator::compiled {
  explicit compiled(json s) : schema(std::move(s)) {}

  json schema;
  node root;
};

std::optional<std::string> check_schema(const json& schema) {
  node root;
  compiler c;
  if (!c.build(schema, root, 0)) {
    return c.error;
  }
  return std::nullopt;
}

validator::validator(std::shared_ptr<const compiled> impl) : impl_(std::move(impl)) {}

std::optional<validator> validator::compile(json schema, std::string* error) {
  auto impl = std::make_shared<compiled>(std::move(schema));
  compiler c;
  if (!c.build(impl->schema, impl->root, 0)) {
    if (error != nullptr) {
      *error = std::move(c.error);
    }
    return std::nullopt;
  }
  return validator{std::move(impl)};
}

std::vector<violation> validator::validate(const json& instance, std::size_t max_violations) const {
  std::vector<segment> path;
  if (too_deep(instance, 1, path)) {
    return {{to_pointer(path), "is nested too deeply"}};
  }
  checker c(max_violations == 0 ? 1 : max_violations);
  c.check(impl_->root, instance);
  return std::move(c.out);
}

const json& validator::schema() const {
  return impl_->schema;
}

} // namespace troupe::protocol::json_schema

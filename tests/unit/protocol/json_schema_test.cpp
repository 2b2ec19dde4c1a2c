#define CAF_SUITE protocol.json_schema

#include "protocol/json_schema.hpp"

#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace troupe::protocol;
using nlohmann::json;

namespace {

// The schema of the tutorial's dashboard feature.
const std::string layout_schema = R"({
  "type": "object",
  "properties": {
    "layout": {
      "type": "object",
      "properties": {
        "columns": {"type": "integer", "minimum": 1, "maximum": 12},
        "widgets": {
          "type": "array",
          "maxItems": 50,
          "items": {
            "type": "object",
            "properties": {
              "id": {"type": "string", "minLength": 1, "maxLength": 64},
              "x": {"type": "integer", "minimum": 0},
              "y": {"type": "integer", "minimum": 0},
              "w": {"type": "integer", "minimum": 1},
              "h": {"type": "integer", "minimum": 1}
            },
            "required": ["id", "x", "y", "w", "h"],
            "additionalProperties": false
          }
        }
      },
      "required": ["columns", "widgets"],
      "additionalProperties": false
    }
  },
  "required": ["layout"],
  "additionalProperties": false
})";

// Violations as "pointer: message | ...", or "ok", so a failed check prints all of them.
std::string show(const std::vector<json_schema::violation>& violations) {
  if (violations.empty()) {
    return "ok";
  }
  std::string out;
  for (const auto& v : violations) {
    out += (out.empty() ? "" : " | ") + v.pointer + ": " + v.message;
  }
  return out;
}

json_schema::validator compile(const json& schema) {
  std::string error;
  auto compiled = json_schema::validator::compile(schema, &error);
  CAF_REQUIRE_EQUAL(error, "");
  CAF_REQUIRE(compiled.has_value());
  return *compiled;
}

std::string run(const std::string& schema, const std::string& instance, std::size_t max = 20) {
  return show(compile(json::parse(schema)).validate(json::parse(instance), max));
}

std::string rejection(const std::string& schema) {
  return json_schema::check_schema(json::parse(schema)).value_or("ok");
}

// `levels` arrays, each holding the next, around a 1.
json nested_arrays(std::size_t levels) {
  json value = 1;
  for (std::size_t i = 0; i < levels; ++i) {
    json outer = json::array();
    outer.push_back(std::move(value));
    value = std::move(outer);
  }
  return value;
}

std::string repeat(const std::string& part, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += part;
  }
  return out;
}

} // namespace

// -- the tutorial's schema ----------------------------------------------------

CAF_TEST(the tutorial schema accepts a valid layout) {
  CAF_CHECK_EQUAL(rejection(layout_schema), "ok");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 3, "widgets": [
                    {"id": "clock", "x": 0, "y": 0, "w": 2, "h": 1},
                    {"id": "news", "x": 2, "y": 0, "w": 1, "h": 3}]}})"),
                  "ok");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 12, "widgets": []}})"), "ok");
  // 1.0 is an integer in JSON Schema.
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 1.0, "widgets": []}})"), "ok");
}

CAF_TEST(the tutorial schema points at every invalid field of a layout) {
  CAF_CHECK_EQUAL(run(layout_schema, "{}"), "/layout: is required");
  CAF_CHECK_EQUAL(run(layout_schema, "[]"), ": must be an object");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": []})"), "/layout: must be an object");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 13, "widgets": []}})"),
                  "/layout/columns: must be at most 12");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 2, "widgets": {}}})"),
                  "/layout/widgets: must be an array");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 0,
                    "widgets": [{"id": "", "x": -1, "y": 1.5, "w": 0, "h": 1, "color": "red"}]}})"),
                  "/layout/columns: must be at least 1"
                  " | /layout/widgets/0/color: is not allowed"
                  " | /layout/widgets/0/id: must have at least 1 character"
                  " | /layout/widgets/0/w: must be at least 1"
                  " | /layout/widgets/0/x: must be at least 0"
                  " | /layout/widgets/0/y: must be an integer");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": "3", "theme": "dark",
                    "widgets": [{"id": "a"}]}})"),
                  "/layout/columns: must be an integer"
                  " | /layout/theme: is not allowed"
                  " | /layout/widgets/0/x: is required"
                  " | /layout/widgets/0/y: is required"
                  " | /layout/widgets/0/w: is required"
                  " | /layout/widgets/0/h: is required");
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {}, "extra": 1})"),
                  "/extra: is not allowed | /layout/columns: is required"
                  " | /layout/widgets: is required");
  auto layout = json::parse(R"({"layout": {"columns": 4, "widgets": []}})");
  const auto widget = json::parse(R"({"id": "w", "x": 0, "y": 0, "w": 1, "h": 1})");
  for (int i = 0; i < 50; ++i) {
    layout["layout"]["widgets"].push_back(widget);
  }
  const auto v = compile(json::parse(layout_schema));
  CAF_CHECK_EQUAL(show(v.validate(layout)), "ok");
  layout["layout"]["widgets"].push_back(widget);
  CAF_CHECK_EQUAL(show(v.validate(layout)), "/layout/widgets: must have at most 50 items");
  layout["layout"]["widgets"] = json::array({widget});
  layout["layout"]["widgets"][0]["id"] = std::string(64, 'i');
  CAF_CHECK_EQUAL(show(v.validate(layout)), "ok");
  layout["layout"]["widgets"][0]["id"] = std::string(65, 'i');
  CAF_CHECK_EQUAL(show(v.validate(layout)),
                  "/layout/widgets/0/id: must have at most 64 characters");
}

// -- type -----------------------------------------------------------------------

CAF_TEST(type accepts exactly the values of each JSON type) {
  const std::vector<std::string> values{"null", "true", "0", "1.5", "\"s\"", "[]", "{}", "2.0"};
  const std::vector<std::pair<std::string, std::string>> expected{
    {"object", "{}"},        {"array", "[]"},     {"string", "\"s\""}, {"integer", "0 2.0"},
    {"number", "0 1.5 2.0"}, {"boolean", "true"}, {"null", "null"},
  };
  const std::vector<std::string> nouns{"an object", "an array",  "a string", "an integer",
                                       "a number",  "a boolean", "null"};
  for (std::size_t t = 0; t < expected.size(); ++t) {
    const auto schema = R"({"type": ")" + expected[t].first + "\"}";
    std::string accepted;
    for (const auto& value : values) {
      const auto result = run(schema, value);
      if (result == "ok") {
        accepted += (accepted.empty() ? "" : " ") + value;
      } else {
        CAF_CHECK_EQUAL(result, ": must be " + nouns[t]);
      }
    }
    CAF_CHECK_EQUAL(accepted, expected[t].second);
  }
}

CAF_TEST(type lists accept any of their types and name them all) {
  const std::string nullable = R"({"type": ["string", "null"]})";
  CAF_CHECK_EQUAL(run(nullable, "\"x\""), "ok");
  CAF_CHECK_EQUAL(run(nullable, "null"), "ok");
  CAF_CHECK_EQUAL(run(nullable, "1"), ": must be a string or null");
  CAF_CHECK_EQUAL(run(R"({"type": ["integer", "string", "null"]})", "1.5"),
                  ": must be an integer, a string or null");
  CAF_CHECK_EQUAL(run(R"({"type": ["integer"]})", "7"), "ok");
}

CAF_TEST(integers are numbers without a fractional part whatever their representation) {
  const std::string integer = R"({"type": "integer"})";
  for (const char* ok :
       {"3", "-3", "3.0", "-0.0", "1e2", "18446744073709551615", "-9223372036854775808", "1e300"}) {
    CAF_CHECK_EQUAL(run(integer, ok), "ok");
  }
  for (const char* bad : {"3.5", "-0.1", "1e-2", "\"3\"", "true"}) {
    CAF_CHECK_EQUAL(run(integer, bad), ": must be an integer");
  }
}

CAF_TEST(a value of the wrong type gets only its type violation) {
  CAF_CHECK_EQUAL(run(R"({"type": "string", "minLength": 5, "enum": ["abcdef"]})", "5"),
                  ": must be a string");
}

// -- objects --------------------------------------------------------------------

CAF_TEST(properties validate their members and required points at the missing ones) {
  const std::string schema = R"({"properties": {"name": {"type": "string"}, "age": {}},
                                 "required": ["name", "age"]})";
  CAF_CHECK_EQUAL(run(schema, R"({"name": "x", "age": null, "other": [1]})"), "ok");
  CAF_CHECK_EQUAL(run(schema, R"({"name": 1})"), "/age: is required | /name: must be a string");
  CAF_CHECK_EQUAL(run(schema, "{}"), "/name: is required | /age: is required");
  // Both only apply to objects.
  CAF_CHECK_EQUAL(run(schema, "[1]"), "ok");
  CAF_CHECK_EQUAL(run(schema, "\"name\""), "ok");
}

CAF_TEST(additional properties may be refused or given a schema) {
  const std::string closed = R"({"properties": {"a": {}}, "additionalProperties": false})";
  CAF_CHECK_EQUAL(run(closed, R"({"a": 1})"), "ok");
  CAF_CHECK_EQUAL(run(closed, R"({"a": 1, "b": 2, "c": 3})"),
                  "/b: is not allowed | /c: is not allowed");
  CAF_CHECK_EQUAL(run(R"({"additionalProperties": false})", "{}"), "ok");
  CAF_CHECK_EQUAL(run(R"({"additionalProperties": false})", R"({"a": 1})"), "/a: is not allowed");
  CAF_CHECK_EQUAL(run(R"({"additionalProperties": true})", R"({"a": 1})"), "ok");
  const std::string typed
    = R"({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}})";
  CAF_CHECK_EQUAL(run(typed, R"({"a": "x", "b": 1})"), "ok");
  CAF_CHECK_EQUAL(run(typed, R"({"a": "x", "b": 1, "c": "no"})"), "/c: must be an integer");
}

CAF_TEST(min and max properties count the members) {
  const std::string schema = R"({"minProperties": 1, "maxProperties": 2})";
  CAF_CHECK_EQUAL(run(schema, R"({"a": 1})"), "ok");
  CAF_CHECK_EQUAL(run(schema, R"({"a": 1, "b": 2})"), "ok");
  CAF_CHECK_EQUAL(run(schema, "{}"), ": must have at least 1 property");
  CAF_CHECK_EQUAL(run(schema, R"({"a": 1, "b": 2, "c": 3})"), ": must have at most 2 properties");
  CAF_CHECK_EQUAL(run(R"({"minProperties": 2})", R"({"a": 1})"),
                  ": must have at least 2 properties");
  CAF_CHECK_EQUAL(run(R"({"maxProperties": 1})", R"({"a": 1, "b": 2})"),
                  ": must have at most 1 property");
  CAF_CHECK_EQUAL(run(schema, "[]"), "ok");
}

// -- arrays ---------------------------------------------------------------------

CAF_TEST(items validates every element at its index) {
  const std::string schema = R"({"items": {"type": "string"}})";
  CAF_CHECK_EQUAL(run(schema, "[]"), "ok");
  CAF_CHECK_EQUAL(run(schema, R"(["a", "b"])"), "ok");
  CAF_CHECK_EQUAL(run(schema, R"(["a", 1, "b", null])"),
                  "/1: must be a string | /3: must be a string");
  CAF_CHECK_EQUAL(run(schema, R"({"0": 1})"), "ok");
}

CAF_TEST(min and max items count the elements) {
  const std::string schema = R"({"minItems": 1, "maxItems": 2})";
  CAF_CHECK_EQUAL(run(schema, "[1]"), "ok");
  CAF_CHECK_EQUAL(run(schema, "[1, 2]"), "ok");
  CAF_CHECK_EQUAL(run(schema, "[]"), ": must have at least 1 item");
  CAF_CHECK_EQUAL(run(schema, "[1, 2, 3]"), ": must have at most 2 items");
  CAF_CHECK_EQUAL(run(R"({"minItems": 2})", "[1]"), ": must have at least 2 items");
  CAF_CHECK_EQUAL(run(R"({"maxItems": 1})", "[1, 2]"), ": must have at most 1 item");
  CAF_CHECK_EQUAL(run(schema, "\"abc\""), "ok");
}

CAF_TEST(unique items compares values as JSON Schema does) {
  const std::string schema = R"({"uniqueItems": true})";
  CAF_CHECK_EQUAL(run(schema, R"([1, "1", [1], {"1": 1}, true, null, 1.5, {"a": [1, 2]}])"), "ok");
  CAF_CHECK_EQUAL(run(schema, R"([1, 2, 1.0, "x", {"a": 1, "b": 2}, {"b": 2, "a": 1.0}, "x"])"),
                  "/2: is a duplicate of item 0 | /5: is a duplicate of item 4"
                  " | /6: is a duplicate of item 3");
  CAF_CHECK_EQUAL(run(schema, "[0, -0.0]"), "/1: is a duplicate of item 0");
  CAF_CHECK_EQUAL(run(schema, "[false, 0]"), "ok");
  // Beyond 2^53 integers stay exact.
  CAF_CHECK_EQUAL(run(schema, "[9007199254740993, 9007199254740992]"), "ok");
  CAF_CHECK_EQUAL(run(R"({"uniqueItems": false})", "[1, 1]"), "ok");
}

// -- enum and const -------------------------------------------------------------

CAF_TEST(enum lists the allowed values in its message) {
  const std::string schema = R"({"enum": ["a", "b"]})";
  CAF_CHECK_EQUAL(run(schema, "\"a\""), "ok");
  CAF_CHECK_EQUAL(run(schema, "\"b\""), "ok");
  CAF_CHECK_EQUAL(run(schema, "\"c\""), R"(: must be one of: "a", "b")");
  const std::string mixed = R"({"enum": [1, {"x": [1, 2]}, null]})";
  CAF_CHECK_EQUAL(run(mixed, "1.0"), "ok");
  CAF_CHECK_EQUAL(run(mixed, R"({"x": [1.0, 2]})"), "ok");
  CAF_CHECK_EQUAL(run(mixed, "null"), "ok");
  CAF_CHECK_EQUAL(run(mixed, "2"), R"(: must be one of: 1, {"x":[1,2]}, null)");
  CAF_CHECK_EQUAL(run(mixed, "true"), R"(: must be one of: 1, {"x":[1,2]}, null)");
  CAF_CHECK_EQUAL(run(R"({"enum": [0,1,2,3,4,5,6,7,8,9,10,11]})", "12"),
                  ": must be one of: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...");
}

CAF_TEST(const allows one value compared by meaning) {
  const std::string schema = R"({"const": {"a": 1, "b": [true]}})";
  CAF_CHECK_EQUAL(run(schema, R"({"b": [true], "a": 1.0})"), "ok");
  CAF_CHECK_EQUAL(run(schema, R"({"a": 1})"), R"(: must be {"a":1,"b":[true]})");
  CAF_CHECK_EQUAL(run(R"({"const": "x"})", "\"y\""), R"(: must be "x")");
  CAF_CHECK_EQUAL(run(R"({"const": 0})", "-0.0"), "ok");
  CAF_CHECK_EQUAL(run(R"({"const": false})", "0"), ": must be false");
  CAF_CHECK_EQUAL(run(R"({"const": null})", "null"), "ok");
  // Keywords without a type apply independently.
  CAF_CHECK_EQUAL(run(R"({"enum": ["a"], "const": "b"})", "\"c\""),
                  R"(: must be "b" | : must be one of: "a")");
}

// -- numbers --------------------------------------------------------------------

CAF_TEST(minimum and maximum are inclusive bounds) {
  const std::string schema = R"({"minimum": 1, "maximum": 12})";
  CAF_CHECK_EQUAL(run(schema, "1"), "ok");
  CAF_CHECK_EQUAL(run(schema, "12"), "ok");
  CAF_CHECK_EQUAL(run(schema, "6.5"), "ok");
  CAF_CHECK_EQUAL(run(schema, "0"), ": must be at least 1");
  CAF_CHECK_EQUAL(run(schema, "0.999"), ": must be at least 1");
  CAF_CHECK_EQUAL(run(schema, "-5"), ": must be at least 1");
  CAF_CHECK_EQUAL(run(schema, "12.001"), ": must be at most 12");
  CAF_CHECK_EQUAL(run(schema, "\"100\""), "ok");
  CAF_CHECK_EQUAL(run(R"({"minimum": 0.5})", "0"), ": must be at least 0.5");
  CAF_CHECK_EQUAL(run(R"({"minimum": 0.5})", "0.5"), "ok");
  CAF_CHECK_EQUAL(run(R"({"maximum": -1.25})", "-1"), ": must be at most -1.25");
}

CAF_TEST(exclusive bounds refuse the bound itself) {
  const std::string schema = R"({"exclusiveMinimum": 0, "exclusiveMaximum": 1.5})";
  CAF_CHECK_EQUAL(run(schema, "0.0001"), "ok");
  CAF_CHECK_EQUAL(run(schema, "1"), "ok");
  CAF_CHECK_EQUAL(run(schema, "0"), ": must be greater than 0");
  CAF_CHECK_EQUAL(run(schema, "-0.0"), ": must be greater than 0");
  CAF_CHECK_EQUAL(run(schema, "1.5"), ": must be less than 1.5");
  CAF_CHECK_EQUAL(run(schema, "2"), ": must be less than 1.5");
}

CAF_TEST(bounds compare large integers exactly) {
  CAF_CHECK_EQUAL(run(R"({"maximum": 9007199254740993})", "9007199254740992"), "ok");
  CAF_CHECK_EQUAL(run(R"({"maximum": 9007199254740993})", "9007199254740993"), "ok");
  CAF_CHECK_EQUAL(run(R"({"maximum": 9007199254740993})", "9007199254740994"),
                  ": must be at most 9007199254740993");
  CAF_CHECK_EQUAL(run(R"({"maximum": 18446744073709551615})", "18446744073709551615"), "ok");
  CAF_CHECK_EQUAL(run(R"({"minimum": -5})", "18446744073709551615"), "ok");
  CAF_CHECK_EQUAL(run(R"({"maximum": -5})", "18446744073709551615"), ": must be at most -5");
  CAF_CHECK_EQUAL(run(R"({"minimum": 0})", "-9223372036854775808"), ": must be at least 0");
  CAF_CHECK_EQUAL(run(R"({"minimum": 18446744073709551615})", "-1"),
                  ": must be at least 18446744073709551615");
  CAF_CHECK_EQUAL(run(R"({"maximum": 1e300})", "18446744073709551615"), "ok");
}

// -- strings --------------------------------------------------------------------

CAF_TEST(string lengths count code points) {
  const std::string schema = R"({"minLength": 2, "maxLength": 5})";
  CAF_CHECK_EQUAL(run(schema, "\"ab\""), "ok");
  CAF_CHECK_EQUAL(run(schema, R"("h\u00e9llo")"), "ok");               // 6 bytes
  CAF_CHECK_EQUAL(run(schema, R"("\ud83d\ude00\ud83d\ude00")"), "ok"); // 8 bytes
  CAF_CHECK_EQUAL(run(schema, "\"a\""), ": must have at least 2 characters");
  CAF_CHECK_EQUAL(run(schema, R"("\ud83d\ude00")"), ": must have at least 2 characters");
  CAF_CHECK_EQUAL(run(schema, "\"abcdef\""), ": must have at most 5 characters");
  CAF_CHECK_EQUAL(run(R"({"maxLength": 1})", "\"ab\""), ": must have at most 1 character");
  CAF_CHECK_EQUAL(run(R"({"maxLength": 200})", "\"" + std::string(201, 'x') + "\""),
                  ": must have at most 200 characters");
  CAF_CHECK_EQUAL(run(schema, "12345678"), "ok");
}

CAF_TEST(pattern is an unanchored ECMAScript search) {
  const std::string schema = R"({"pattern": "^[a-z]+$"})";
  CAF_CHECK_EQUAL(run(schema, "\"abc\""), "ok");
  CAF_CHECK_EQUAL(run(schema, "\"abC\""), ": must match pattern ^[a-z]+$");
  CAF_CHECK_EQUAL(run(schema, "\"\""), ": must match pattern ^[a-z]+$");
  CAF_CHECK_EQUAL(run(R"({"pattern": "b"})", "\"abc\""), "ok");
  CAF_CHECK_EQUAL(run(R"({"pattern": "^\\d{3}-\\d{4}$"})", "\"555-1234\""), "ok");
  CAF_CHECK_EQUAL(run(R"({"pattern": "^\\d{3}-\\d{4}$"})", "\"555-12345\""),
                  R"(: must match pattern ^\d{3}-\d{4}$)");
  // $ does not match before a final newline, as in ECMAScript.
  CAF_CHECK_EQUAL(run(schema, R"("abc\n")"), ": must match pattern ^[a-z]+$");
  CAF_CHECK_EQUAL(run(schema, "42"), "ok");
}

CAF_TEST(pattern refuses strings too long to match safely) {
  const std::string schema = R"({"pattern": "^(a|b)*$"})";
  const auto longest = std::string(json_schema::max_pattern_subject, 'a');
  CAF_CHECK_EQUAL(run(schema, "\"" + longest + "\""), "ok");
  CAF_CHECK_EQUAL(run(schema, "\"" + longest + "a\""),
                  ": is too long to match pattern ^(a|b)*$ (at most 1000 bytes)");
  // A length violation comes first and still applies.
  CAF_CHECK_EQUAL(run(R"({"maxLength": 1000, "pattern": "^a*$"})", "\"" + longest + "a\""),
                  ": must have at most 1000 characters"
                  " | : is too long to match pattern ^a*$ (at most 1000 bytes)");
}

// -- formats --------------------------------------------------------------------

CAF_TEST(format date - time is RFC 3339) {
  const std::string schema = R"({"format": "date-time"})";
  for (const char* ok :
       {"2024-05-01T12:00:00Z", "2024-02-29T23:59:59.123+01:00", "2024-05-01t12:00:00z",
        "1990-12-31T23:59:60Z", "1990-12-31T15:59:60-08:00", "2000-02-29T00:00:00.000000001Z",
        "2024-05-01T00:00:00-23:59"}) {
    CAF_CHECK_EQUAL(run(schema, std::string("\"") + ok + "\""), "ok");
  }
  for (const char* bad :
       {"2024-05-01", "2024-05-01 12:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z", "2024-05-01T12:00:00", "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00+1:00", "2024-05-01T12:00:00+01:60", "2024-05-01T12:00:60Z",
        "2024-05-01T12:00:00Z ", "24-05-01T12:00:00Z", "2024-5-01T12:00:00Z", ""}) {
    CAF_CHECK_EQUAL(run(schema, std::string("\"") + bad + "\""),
                    ": must be a date-time (RFC 3339, e.g. 2024-05-01T12:00:00Z)");
  }
}

CAF_TEST(format email is an RFC 5321 address) {
  const std::string schema = R"({"format": "email"})";
  for (const char* ok :
       {"joe@example.com", "first.last+tag@sub.example.co", R"(\"odd name\"@example.com)",
        "user@[192.168.0.1]", "user@[IPv6:2001:db8::1]", "user@localhost", "o'brien@example.ie"}) {
    CAF_CHECK_EQUAL(run(schema, std::string("\"") + ok + "\""), "ok");
  }
  for (const char* bad :
       {"joe", "@example.com", "joe@", "joe@@example.com", ".joe@example.com", "joe.@example.com",
        "jo..e@example.com", "joe@-example.com", "joe@example..com", "joe smith@example.com",
        "joe@exa_mple.com", "joe@[300.1.1.1]", R"(j\u00f6e@example.com)", ""}) {
    CAF_CHECK_EQUAL(run(schema, std::string("\"") + bad + "\""), ": must be an email address");
  }
}

CAF_TEST(format uuid is the hyphenated hex form) {
  const std::string schema = R"({"format": "uuid"})";
  for (const char* ok :
       {"123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
        "00000000-0000-0000-0000-000000000000"}) {
    CAF_CHECK_EQUAL(run(schema, std::string("\"") + ok + "\""), "ok");
  }
  for (const char* bad :
       {"123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g",
        "{123e4567-e89b-12d3-a456-426614174000}", "123e4567-e89b-12d3-a4564-26614174000", ""}) {
    CAF_CHECK_EQUAL(run(schema, std::string("\"") + bad + "\""), ": must be a UUID");
  }
}

CAF_TEST(other formats and non strings are not checked) {
  CAF_CHECK_EQUAL(run(R"({"format": "hostname"})", "\"not a host!\""), "ok");
  CAF_CHECK_EQUAL(run(R"({"format": "made-up"})", "\"x\""), "ok");
  CAF_CHECK_EQUAL(run(R"({"format": "email"})", "5"), "ok");
  CAF_CHECK_EQUAL(run(R"({"format": "uuid"})", "null"), "ok");
}

// -- boolean schemas and annotations ------------------------------------------

CAF_TEST(boolean schemas accept everything or nothing) {
  for (const char* value : {"null", "1", "\"x\"", "[1, [2]]", R"({"a": {}})"}) {
    CAF_CHECK_EQUAL(run("true", value), "ok");
    CAF_CHECK_EQUAL(run("{}", value), "ok");
    CAF_CHECK_EQUAL(run("false", value), ": is not allowed");
  }
  CAF_CHECK_EQUAL(run(R"({"properties": {"x": false}})", R"({"y": 1})"), "ok");
  CAF_CHECK_EQUAL(run(R"({"properties": {"x": false}})", R"({"x": 1})"), "/x: is not allowed");
  CAF_CHECK_EQUAL(run(R"({"items": false})", "[]"), "ok");
  CAF_CHECK_EQUAL(run(R"({"items": false})", "[1, 2]"), "/0: is not allowed | /1: is not allowed");
  CAF_CHECK_EQUAL(
    run(R"({"properties": {"x": true}, "additionalProperties": false})", R"({"x": [1]})"), "ok");
}

CAF_TEST(annotations are accepted and ignored) {
  const std::string schema = R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:troupe:layout",
    "$comment": "c", "title": "t", "description": "d", "default": {"a": 1}, "examples": [1, "x"],
    "deprecated": false, "readOnly": true, "writeOnly": false, "type": "integer"})";
  CAF_CHECK_EQUAL(rejection(schema), "ok");
  CAF_CHECK_EQUAL(run(schema, "1"), "ok");
  CAF_CHECK_EQUAL(run(schema, "\"x\""), ": must be an integer");
}

// -- pointers and limits ------------------------------------------------------

CAF_TEST(pointers escape tilde and slash) {
  CAF_CHECK_EQUAL(run(R"({"required": ["a/b", "m~n", "~/"]})", "{}"),
                  "/a~1b: is required | /m~0n: is required | /~0~1: is required");
  CAF_CHECK_EQUAL(run(R"({"properties": {"a/b": {"type": "string"}}})", R"({"a/b": 1})"),
                  "/a~1b: must be a string");
  CAF_CHECK_EQUAL(run(R"({"items": {"additionalProperties": {"items": false}}})",
                      R"([{"~01": [1]}, {"x/y~": ["z"]}])"),
                  "/0/~001/0: is not allowed | /1/x~1y~0/0: is not allowed");
  const auto violations = compile(json::parse(R"({"type": "string"})")).validate(json::parse("1"));
  CAF_REQUIRE_EQUAL(violations.size(), 1u);
  CAF_CHECK_EQUAL(violations[0].pointer, "");
  CAF_CHECK_EQUAL(violations[0].message, "must be a string");
}

CAF_TEST(validation stops at the most violations asked for) {
  const auto v = compile(json::parse(R"({"items": {"type": "string"}})"));
  const auto numbers = json::parse("[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22]");
  const auto all = v.validate(numbers);
  CAF_REQUIRE_EQUAL(all.size(), 20u);
  CAF_CHECK_EQUAL(all.front().pointer, "/0");
  CAF_CHECK_EQUAL(all.back().pointer, "/19");
  CAF_CHECK_EQUAL(v.validate(numbers, 100).size(), 23u);
  CAF_CHECK_EQUAL(v.validate(numbers, 3).size(), 3u);
  CAF_CHECK_EQUAL(show(v.validate(numbers, 1)), "/0: must be a string");
  // Zero would hide that the instance is invalid.
  CAF_CHECK_EQUAL(show(v.validate(numbers, 0)), "/0: must be a string");
  CAF_CHECK_EQUAL(v.validate(json::parse(R"(["a"])"), 0).size(), 0u);
  CAF_CHECK_EQUAL(run(layout_schema, R"({"layout": {"columns": 0, "widgets": [{}]}})", 2),
                  "/layout/columns: must be at least 1 | /layout/widgets/0/id: is required");
}

CAF_TEST(instances nested deeper than 64 levels get one violation) {
  const auto anything = compile(true);
  CAF_CHECK_EQUAL(show(anything.validate(nested_arrays(json_schema::max_depth))), "ok");
  CAF_CHECK_EQUAL(show(anything.validate(nested_arrays(json_schema::max_depth + 1))),
                  repeat("/0", json_schema::max_depth) + ": is nested too deeply");
  CAF_CHECK_EQUAL(show(anything.validate(nested_arrays(10000))),
                  repeat("/0", json_schema::max_depth) + ": is nested too deeply");
  // The guard runs before any keyword, so there is only the one violation.
  const auto strings = compile(json::parse(R"({"items": {"type": "string"}})"));
  auto deep = json::array({1, 2, nested_arrays(json_schema::max_depth)});
  CAF_CHECK_EQUAL(show(strings.validate(deep)),
                  "/2" + repeat("/0", json_schema::max_depth - 1) + ": is nested too deeply");
  json objects = 1;
  for (std::size_t i = 0; i < json_schema::max_depth + 1; ++i) {
    objects = json{{"a/b", std::move(objects)}};
  }
  CAF_CHECK_EQUAL(show(anything.validate(objects)),
                  repeat("/a~1b", json_schema::max_depth) + ": is nested too deeply");
}

// -- checking schemas -----------------------------------------------------------

CAF_TEST(check schema names unsupported keywords and where they are) {
  CAF_CHECK_EQUAL(rejection(R"({"$ref": "#/$defs/x"})"), R"(unsupported keyword "$ref" at #)");
  CAF_CHECK_EQUAL(rejection(R"({"properties": {"a": {"oneOf": [{}]}}})"),
                  R"(unsupported keyword "oneOf" at #/properties/a)");
  CAF_CHECK_EQUAL(rejection(R"({"items": {"properties": {"x/y~": {"anyOf": []}}}})"),
                  R"(unsupported keyword "anyOf" at #/items/properties/x~1y~0)");
  CAF_CHECK_EQUAL(rejection(R"({"additionalProperties": {"$defs": {}}})"),
                  R"(unsupported keyword "$defs" at #/additionalProperties)");
  for (const char* keyword : {"allOf", "not", "if", "prefixItems", "contains", "patternProperties",
                              "propertyNames", "dependentRequired", "multipleOf", "minContains",
                              "unevaluatedProperties", "$anchor", "$dynamicRef", "nullable"}) {
    CAF_CHECK_EQUAL(rejection(std::string("{\"") + keyword + "\": 1}"),
                    std::string("unsupported keyword \"") + keyword + "\" at #");
  }
}

CAF_TEST(check schema refuses malformed keyword values) {
  const std::vector<std::pair<std::string, std::string>> cases{
    {"5", "a schema must be an object or a boolean at #"},
    {"null", "a schema must be an object or a boolean at #"},
    {R"({"properties": {"a": 5}})", "a schema must be an object or a boolean at #/properties/a"},
    {R"({"properties": []})", R"("properties" must be an object at #)"},
    {R"({"additionalProperties": "no"})",
     "a schema must be an object or a boolean at #/additionalProperties"},
    {R"({"items": [{}]})",
     R"("items" must be a schema (2020-12: tuples are "prefixItems", unsupported) at #)"},
    {R"({"type": "float"})", R"(unknown type "float" at #)"},
    {R"({"type": []})", R"("type" must be a type name or a non-empty array of them at #)"},
    {R"({"type": 1})", R"("type" must be a type name or a non-empty array of them at #)"},
    {R"({"type": ["string", 1]})",
     R"("type" must be a type name or a non-empty array of them at #)"},
    {R"({"type": ["string", "string"]})", R"("type" lists a type twice at #)"},
    {R"({"required": "a"})", R"("required" must be an array of strings at #)"},
    {R"({"required": [1]})", R"("required" must be an array of strings at #)"},
    {R"({"required": ["a", "a"]})", R"("required" lists "a" twice at #)"},
    {R"({"enum": []})", R"("enum" must be a non-empty array at #)"},
    {R"({"enum": "a"})", R"("enum" must be a non-empty array at #)"},
    {R"({"minimum": "1"})", R"("minimum" must be a number at #)"},
    {R"({"maximum": null})", R"("maximum" must be a number at #)"},
    {R"({"exclusiveMinimum": true})", R"("exclusiveMinimum" must be a number at #)"},
    {R"({"exclusiveMaximum": [1]})", R"("exclusiveMaximum" must be a number at #)"},
    {R"({"minLength": -1})", R"("minLength" must be a non-negative integer at #)"},
    {R"({"maxLength": 1.5})", R"("maxLength" must be a non-negative integer at #)"},
    {R"({"minItems": "1"})", R"("minItems" must be a non-negative integer at #)"},
    {R"({"maxItems": -3})", R"("maxItems" must be a non-negative integer at #)"},
    {R"({"minProperties": null})", R"("minProperties" must be a non-negative integer at #)"},
    {R"({"maxProperties": {}})", R"("maxProperties" must be a non-negative integer at #)"},
    {R"({"pattern": 5})", R"("pattern" must be a string at #)"},
    {R"({"uniqueItems": "yes"})", R"("uniqueItems" must be a boolean at #)"},
    {R"({"format": 1})", R"("format" must be a string at #)"},
    {R"({"title": 1})", R"("title" must be a string at #)"},
    {R"({"$schema": {}})", R"("$schema" must be a string at #)"},
    {R"({"deprecated": "no"})", R"("deprecated" must be a boolean at #)"},
    {R"({"examples": {}})", R"("examples" must be an array at #)"},
  };
  for (const auto& [schema, error] : cases) {
    CAF_CHECK_EQUAL(rejection(schema), error);
  }
  // Integral floats are integers here too.
  CAF_CHECK_EQUAL(rejection(R"({"minLength": 2.0, "maxItems": 0})"), "ok");
}

CAF_TEST(check schema refuses invalid regular expressions) {
  for (const char* bad : {"[a-", "(", "a{2,1}", "*a", "\\\\p{L}"}) {
    const auto error
      = rejection(std::string(R"({"properties": {"p": {"pattern": ")") + bad + "\"}}}");
    CAF_CHECK_EQUAL(error.rfind("invalid pattern \"", 0), 0u);
    CAF_CHECK_NOT_EQUAL(error.find(" at #/properties/p"), std::string::npos);
  }
  CAF_CHECK_EQUAL(rejection(R"({"pattern": "^[a-z0-9_-]{1,32}(\\.[a-z]+)?$"})"), "ok");
}

CAF_TEST(check schema limits how deeply subschemas nest) {
  json schema = true;
  for (std::size_t i = 0; i < json_schema::max_depth; ++i) {
    schema = json{{"items", std::move(schema)}};
  }
  CAF_CHECK_EQUAL(json_schema::check_schema(schema).value_or("ok"), "ok");
  schema = json{{"items", std::move(schema)}};
  CAF_CHECK_EQUAL(json_schema::check_schema(schema).value_or("ok"),
                  "the schema is nested too deeply at #"
                    + repeat("/items", json_schema::max_depth + 1));
}

// -- the validator ------------------------------------------------------------

CAF_TEST(compile reports why a schema is refused and keeps a valid one) {
  std::string error;
  CAF_CHECK(!json_schema::validator::compile(json::parse(R"({"oneOf": []})"), &error));
  CAF_CHECK_EQUAL(error, R"(unsupported keyword "oneOf" at #)");
  CAF_CHECK(!json_schema::validator::compile(json::parse(R"({"oneOf": []})"), nullptr));
  error.clear();
  const auto schema = json::parse(layout_schema);
  auto v = json_schema::validator::compile(schema, &error);
  CAF_REQUIRE(v.has_value());
  CAF_CHECK_EQUAL(error, "");
  CAF_CHECK_EQUAL(v->schema(), schema);
  // Copies share the compiled schema.
  const auto copy = *v;
  v.reset();
  CAF_CHECK_EQUAL(copy.schema(), schema);
  CAF_CHECK_EQUAL(show(copy.validate(json::parse("{}"))), "/layout: is required");
}

CAF_TEST(one validator serves concurrent validations) {
  const auto v = compile(json::parse(layout_schema));
  const auto valid = json::parse(R"({"layout": {"columns": 3, "widgets": [
                                      {"id": "a", "x": 0, "y": 0, "w": 1, "h": 1}]}})");
  const auto invalid = json::parse(R"({"layout": {"columns": 30, "widgets": [{"id": "a"}]}})");
  const auto expected = show(v.validate(invalid));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        if (!v.validate(valid).empty() || show(v.validate(invalid)) != expected) {
          ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CAF_CHECK_EQUAL(wrong.load(), 0);
  // Regular expressions are shared as well.
  const auto slug = compile(json::parse(R"({"items": {"pattern": "^[a-z]+(-[a-z]+)*$"}})"));
  const auto slugs = json::parse(R"(["a-b", "A", "c", "-d"])");
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        if (show(slug.validate(slugs))
            != "/1: must match pattern ^[a-z]+(-[a-z]+)*$"
               " | /3: must match pattern ^[a-z]+(-[a-z]+)*$") {
          ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CAF_CHECK_EQUAL(wrong.load(), 0);
  CAF_CHECK_EQUAL(expected, "/layout/columns: must be at most 12 | /layout/widgets/0/x: is required"
                            " | /layout/widgets/0/y: is required | /layout/widgets/0/w: is required"
                            " | /layout/widgets/0/h: is required");
}

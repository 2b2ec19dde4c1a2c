#pragma once

// The JSON Schema (draft 2020-12) subset feature actors declare their parameters in: types,
// properties, items, enums, bounds, lengths, patterns and three formats. A schema is checked
// and compiled once, at registration, then validates any number of instances. No I/O here.

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe::protocol::json_schema {

/// One way an instance fails its schema.
struct violation {
  std::string pointer; ///< RFC 6901 pointer into the instance (`/layout/widgets/0/x`), "" = root
  std::string message; ///< short and human: `is required`, `must be at least 1`
};

/// The deepest nesting of arrays and objects `validate` accepts; deeper instances get one
/// violation, `is nested too deeply`, at the first container below this depth.
inline constexpr std::size_t max_depth = 64;

/// The longest string, in bytes, matched against a `pattern`: std::regex recurses once per
/// character, so longer ones get `is too long to match pattern ...` instead of a stack overflow.
inline constexpr std::size_t max_pattern_subject = 1000;

/// Why `schema` is not a schema of the supported subset (an unknown or unsupported keyword such
/// as `$ref` or `oneOf`, a keyword's value of the wrong kind, an invalid regular expression),
/// with the schema location (`at #/properties/x`); nullopt if it is one. Meant for start-up:
/// a bad registration fails there.
///
/// Supported: `type`, `properties`, `required`, `additionalProperties`, `items` (a schema),
/// `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`,
/// `maxLength` (Unicode code points), `pattern` (ECMAScript, not anchored), `minItems`,
/// `maxItems`, `uniqueItems`, `minProperties`, `maxProperties`, `format` (`date-time`, `email`
/// and `uuid` are checked, others ignored), boolean schemas, and the annotations `$schema`,
/// `$id`, `$comment`, `title`, `description`, `default`, `examples`, `deprecated`,
/// `readOnly` and `writeOnly` (ignored). Subschemas nest at most `max_depth` levels.
std::optional<std::string> check_schema(const nlohmann::json& schema);

/// A compiled schema. Copies share the immutable compiled form; `validate` may run on any
/// number of threads at once.
class validator {
public:
  /// Compiles `schema` (regular expressions included); nullopt, and the reason `check_schema`
  /// gives in `*error` unless `error` is null, if it is not a schema of the supported subset.
  static std::optional<validator> compile(nlohmann::json schema, std::string* error);

  /// The ways `instance` fails the schema, at most `max_violations` (0 counts as 1); empty if
  /// it is valid. In an object, missing required members come first, then the members by name;
  /// in an array, elements by index. A value of the wrong type gets only its type violation.
  /// Numbers compare exactly (3.0 is an integer; 1 and 1.0 are equal).
  std::vector<violation> validate(const nlohmann::json& instance,
                                  std::size_t max_violations = 20) const;

  /// The schema as compiled.
  const nlohmann::json& schema() const;

private:
  struct compiled;

  explicit validator(std::shared_ptr<const compiled> impl);

  std::shared_ptr<const compiled> impl_;
};

} // namespace troupe::protocol::json_schema

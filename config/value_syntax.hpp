#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The value syntax shared by the INI file, the environment and the command line. Internal to
// config/: settings.hpp is the folder's interface.
namespace troupe::config {

/// One element of a list value: its text (unescaped if it was quoted) and how it was written.
struct list_element {
  std::string text;
  bool quoted = false;
};

/// A parsed value: a bare word (`8080`, `info`), a quoted string (`"a \"b\""`) or a list
/// (`[600, 60]`, `["a:1","b:2"]`). Lists are flat; their elements are bare or quoted.
struct value {
  enum class kind { bare, quoted, list };
  kind type = kind::bare;
  std::string text;                   ///< bare or quoted: the text, unescaped
  std::vector<list_element> elements; ///< list: the elements in order
};

/// Parses `raw` exactly as written, without trimming: `"…"` (escapes `\"` and `\\` only) and
/// `[…]` must span all of `raw`; anything else is a bare word. Returns nothing when a quoted
/// string or a list is malformed.
[[nodiscard]] std::optional<value> parse_value(std::string_view raw);

/// Parses decimal digits only (no sign, spaces or prefix) into a number no greater than `max`.
[[nodiscard]] std::optional<std::uint64_t> parse_unsigned(std::string_view text, std::uint64_t max);

/// `text` in double quotes, with `"` and `\` escaped and control characters as `\n`, `\t`,
/// `\r` or `\xNN`, so that the result is one line (INI syntax for ordinary strings).
std::string quote(std::string_view text);

} // namespace troupe::config

#pragma once

#include "config/settings.hpp"
#include "config/value_syntax.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

// The one table of configuration keys that drives parsing, validation, help and known_keys().
// Internal to config/: settings.hpp is the folder's interface.
namespace troupe::config {

/// How one key reads a value into `settings` and writes its current value back.
struct key_codec {
  /// What a valid value looks like, completing "(expected …)": `an integer 0..65535`.
  std::string expected;
  /// Stores `v` in its field; false (and `settings` unchanged) when `v` is invalid.
  std::function<bool(settings&, const value& v)> assign;
  /// The field's current value as it would be written in an INI file: `"info"`, `[600,60]`.
  std::function<std::string(const settings&)> render;
};

/// One configuration key: its name, default, meaning and parsing, defined in one place.
struct key_descriptor {
  std::string name;         ///< `group.key`, e.g. `http.max-body-bytes`
  std::string default_text; ///< the default as written in an INI file, or a note in parentheses
  std::string description;  ///< one line for help_text()
  key_codec codec;
};

/// Every key, in the order help_text() lists them.
const std::vector<key_descriptor>& key_table();

/// The key named `name` (`group.key`, exact spelling), or nullptr.
const key_descriptor* find_key(std::string_view name);

/// The distinct groups (`http`, `database`, …) in table order.
const std::vector<std::string>& key_groups();

/// The environment variable for a key: `http.max-body-bytes` → `TROUPE_HTTP_MAX_BODY_BYTES`.
std::string environment_name(std::string_view key);

} // namespace troupe::config

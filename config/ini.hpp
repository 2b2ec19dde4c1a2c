#pragma once

#include "config/settings.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

// Reading the INI file of `--config-file`. Internal to config/: settings.hpp is the interface.
namespace troupe::config {

/// One `key=value` line of an INI file: the full key, the value's raw text, where it stood.
struct ini_entry {
  std::string key; ///< `group.key`, a key of key_table()
  std::string raw; ///< the value as written, without blanks or a trailing comment
  int line = 0;    ///< 1-based line of the key
};

/// Splits INI text (CAF's syntax: `[group]`, `key=value`, `#`/`;` comments) into entries in
/// file order. Values are not checked here, but unknown sections and keys, keys outside a
/// section and malformed lines are errors; `file_name` appears in their messages.
[[nodiscard]] std::variant<std::vector<ini_entry>, config_error>
parse_ini(std::string_view text, const std::string& file_name);

} // namespace troupe::config

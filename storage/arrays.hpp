#pragma once

// PostgreSQL text[] values as our statements exchange them: sent as array literals, read as
// `array_to_json(column)::text`.

#include <string>
#include <string_view>
#include <vector>

namespace troupe::storage {

/// The strings of a JSON array text (non-strings are skipped; anything else is empty).
std::vector<std::string> text_array(std::string_view json_text);

/// A PostgreSQL array literal of `items`, each quoted and escaped.
std::string array_literal(const std::vector<std::string>& items);

} // namespace troupe::storage

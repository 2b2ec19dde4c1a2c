#pragma once

// Result rows turned into values, shared by the repositories: every row, or the first one.

#include "storage/pg.hpp"

#include <caf/expected.hpp>

#include <optional>
#include <vector>

namespace troupe::storage {

/// `convert(rows, r)` of every row, or the statement's error.
template <class Row, class Convert>
caf::expected<std::vector<Row>> all_rows(caf::expected<pg_rows> rows, Convert convert) {
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<Row> out;
  out.reserve(static_cast<std::size_t>(rows->size()));
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back(convert(*rows, r));
  }
  return out;
}

/// `convert(rows, 0)`, nullopt if there is no row, or the statement's error.
template <class Row, class Convert>
caf::expected<std::optional<Row>> first_row(caf::expected<pg_rows> rows, Convert convert) {
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 0) {
    return std::optional<Row>{};
  }
  return std::optional<Row>{convert(*rows, 0)};
}

} // namespace troupe::storage

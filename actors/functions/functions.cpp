#include "actors/functions/functions.hpp"

namespace troupe::actors {

void add_functions(features::catalog& catalog) {
  add_dashboard(catalog);
  // add_your_feature(catalog);
}

} // namespace troupe::actors

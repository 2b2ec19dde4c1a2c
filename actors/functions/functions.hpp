#pragma once

// The application's own feature actors. Adding one is one line in `add_functions`
// (docs/feature-actors.md); the server calls it once at start-up.

namespace troupe::features {
class catalog;
} // namespace troupe::features

namespace troupe::actors {

/// Registers the application's functions and job handlers.
void add_functions(features::catalog& catalog);

/// The tutorial's worked example (docs/feature-actors.md): `dashboard.save_layout` and
/// `dashboard.get_layout`, one dashboard layout per user in the tenant table
/// `dashboard_layouts` (storage/migrations/0009_dashboard_layouts.sql).
void add_dashboard(features::catalog& catalog);

} // namespace troupe::actors

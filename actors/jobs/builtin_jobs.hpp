#pragma once

#include <cstdint>
#include <memory>

namespace troupe::features {
class catalog;
} // namespace troupe::features

namespace troupe::actors {

class http_client;

struct builtin_jobs_options {
  bool test_handlers = false;             ///< jobs.test-handlers: test.noop, test.sleep, test.fail
  std::uint32_t audit_retention_days = 0; ///< audit.retention-days (audit.prune)
  std::shared_ptr<http_client> client;    ///< http.request (the address guard is the client's)
};

/// Registers the built-in job types of API.md "Jobs and schedules" (docs/jobs.md "Built-in
/// job types"): http.request, tenant.export, audit.prune, and the test handlers if enabled.
void add_builtin_jobs(features::catalog& catalog, const builtin_jobs_options& options);

} // namespace troupe::actors

#pragma once

#include "protocol/auth.hpp"

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include <memory>

namespace troupe::features {
class catalog;
} // namespace troupe::features

namespace troupe::actors {

/// Where the HTTP routes find the jobs service.
inline constexpr caf::atom_value jobs_key = caf::atom("jobs");

struct jobs_service_options {
  std::shared_ptr<const features::catalog> catalog;
  std::chrono::seconds function_timeout{30};
  std::string token; ///< marks this process's job notifications (see job_dispatcher_options)
};

/// Spawns the jobs, schedules and functions service (protocol::users_actor interface,
/// registered as `jobs_key`; docs/jobs.md, docs/feature-actors.md): enqueueing, reading,
/// cancelling and retrying jobs, schedules, and calls of registered functions. Writes are
/// audited work through the directory; after a write that makes a job due it pokes the node's
/// job dispatcher.
protocol::users_actor spawn_jobs_service(caf::local_actor* parent, jobs_service_options options);

} // namespace troupe::actors

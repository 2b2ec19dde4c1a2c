#pragma once

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace troupe::features {
class catalog;
} // namespace troupe::features

namespace troupe::storage {
struct claimed_job;
} // namespace troupe::storage

namespace troupe::actors {

class metrics_registry;

/// Where services find the node's job dispatcher.
inline constexpr caf::atom_value job_dispatcher_key = caf::atom("jobdisp");

struct job_dispatcher_options {
  std::string node; ///< cluster.node-id: names this node's leases
  std::shared_ptr<const features::catalog> catalog;
  std::uint32_t concurrency = 16; ///< jobs.concurrency: handlers running at once on this node
  std::uint32_t retry_base_ms = 1000;
  std::uint32_t retry_max_ms = 3600000;
  std::uint32_t prefetch = 0; ///< jobs claimed ahead of a free slot (0: 32 × concurrency)
  std::int64_t lease_s = 30;  ///< a claim's lease; heartbeats renew it
  std::chrono::milliseconds heartbeat{10000};
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds cancel_grace{5000}; ///< a cancelled handler's time to stop
  std::chrono::milliseconds drain_grace{10000}; ///< shutdown: running jobs' time to finish
  /// LISTENs on `troupe_jobs` with this connection (empty: no listener), so jobs enqueued on
  /// other nodes are claimed at once, not at the next poll.
  std::string listen_conninfo;
  std::string token; ///< this process's mark on its own notifications (ignored here)
  std::shared_ptr<metrics_registry> metrics;
};

/// Spawns the node's job dispatcher (docs/jobs.md "Running"), registered as
/// `job_dispatcher_key`. It fires due schedules and claims due jobs in batches under leases
/// that its heartbeats renew, runs each in a `job_runner` actor (at most `concurrency` at once),
/// records outcomes in batches, and on shutdown lets running jobs finish (up to `drain_grace`)
/// and gives back the ones it has not started.
caf::actor spawn_job_dispatcher(caf::local_actor* parent, job_dispatcher_options options);

/// Spawns the `job_runner` of one attempt of `job` (what the dispatcher does for each job it
/// starts; public for tests). It reports `(attempted_atom, tenant id, storage::job_outcome)` to
/// `report_to` and ends; `retire_atom` cancels it.
caf::actor spawn_job_runner(caf::actor_system& system, const job_dispatcher_options& options,
                            caf::actor report_to, const storage::claimed_job& job);

/// Tells this node's dispatcher that `tenant` has jobs due now (no-op if it is not running).
void poke_job_dispatcher(caf::actor_system& system, const std::string& tenant);

/// Tells this node's dispatcher that `job` was cancelled (it stops it if it runs it here).
void cancel_job_here(caf::actor_system& system, const std::string& job);

} // namespace troupe::actors

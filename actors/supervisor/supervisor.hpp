#pragma once

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace troupe::actors {

class metrics_registry;

/// How a supervisor starts one child. `start` runs inside the supervisor and spawns the
/// child (detached if it may block); the supervisor then links and monitors it.
struct child_spec {
  std::string name;
  std::function<caf::actor(caf::local_actor* supervisor)> start;
};

/// Restart policy. A crashed child is restarted after a backoff that starts at
/// `min_backoff` and doubles up to `max_backoff`; a child that stays up for `stable_after`
/// gets its backoff reset. More than `max_restarts` restarts of the supervisor's children
/// within `restart_window` escalate: the supervisor stops every child and exits with the
/// last crash's reason, so its own parent (or main) decides.
struct supervisor_options {
  caf::timespan min_backoff = std::chrono::milliseconds{100};
  caf::timespan max_backoff = std::chrono::seconds{10};
  caf::timespan stable_after = std::chrono::seconds{30};
  std::size_t max_restarts = 5;
  caf::timespan restart_window = std::chrono::seconds{60};
  /// If set, `troupe_actors{kind=<child name>}` follows the children's lives.
  std::shared_ptr<metrics_registry> metrics;
};

/// Spawns a supervisor that starts `children` in order. It answers
/// `ready_atom` → `protocol::readiness` (ready while every child runs and it is not stopping)
/// and `(get_atom, name)` → the child's current handle (an invalid handle while restarting).
/// An exit message that is not from a child stops the children in reverse order, each
/// waiting for the previous one to finish, then the supervisor exits with that reason.
caf::actor spawn_supervisor(caf::actor_system& sys, const std::string& name,
                            std::vector<child_spec> children, supervisor_options options);

} // namespace troupe::actors

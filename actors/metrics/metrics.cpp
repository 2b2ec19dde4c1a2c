#include "actors/metrics/metrics.hpp"

#include "actors/metrics/metrics_registry.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace troupe::actors {

namespace {

struct metrics_state {
  static inline const char* name = "metrics";
  std::shared_ptr<const metrics_registry> registry;
};

protocol::metrics_actor::behavior_type
metrics(protocol::metrics_actor::stateful_pointer<metrics_state> self,
        std::shared_ptr<const metrics_registry> registry) {
  self->state.registry = std::move(registry);
  self->system().registry().put(protocol::metrics_key, self);
  return {
    [self](protocol::render_atom) { return self->state.registry->render(); },
  };
}

} // namespace

protocol::metrics_actor spawn_metrics(caf::local_actor* parent,
                                      std::shared_ptr<const metrics_registry> registry) {
  return parent->spawn(metrics, std::move(registry));
}

} // namespace troupe::actors

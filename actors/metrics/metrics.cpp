#include "actors/metrics/metrics.hpp"

#include "actors/metrics/metrics_registry.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>

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
    [self](protocol::render_atom) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      auto text = self->state.registry->render();
      auto pool = self->system().registry().get<protocol::pool_stats_actor>(protocol::db_pool_key);
      if (!pool) {
        rp.deliver(std::move(text));
        return rp;
      }
      // The pool owns its numbers; a pool that is away leaves its lines out.
      self->request(pool, std::chrono::seconds{1}, caf::get_atom_v)
        .then(
          [rp, text](const protocol::db_pool_stats& stats) mutable {
            text += "# HELP troupe_db_pool_connections PostgreSQL connections of the pool, by "
                    "state; waiting counts queued units of work.\n"
                    "# TYPE troupe_db_pool_connections gauge\n";
            text
              += "troupe_db_pool_connections{state=\"busy\"} " + std::to_string(stats.busy) + "\n";
            text
              += "troupe_db_pool_connections{state=\"idle\"} " + std::to_string(stats.idle) + "\n";
            text += "troupe_db_pool_connections{state=\"waiting\"} " + std::to_string(stats.waiting)
                    + "\n";
            rp.deliver(std::move(text));
          },
          [rp, text](caf::error&) mutable { rp.deliver(std::move(text)); });
      return rp;
    },
  };
}

} // namespace

protocol::metrics_actor spawn_metrics(caf::local_actor* parent,
                                      std::shared_ptr<const metrics_registry> registry) {
  return parent->spawn(metrics, std::move(registry));
}

} // namespace troupe::actors

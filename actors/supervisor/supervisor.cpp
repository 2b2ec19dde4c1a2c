#include "actors/supervisor/supervisor.hpp"

#include "actors/metrics/metrics_registry.hpp"
#include "protocol/type_ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/sec.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>

#include <algorithm>
#include <deque>

namespace troupe::actors {

namespace {

struct child_slot {
  child_spec spec;
  caf::actor handle;
  caf::actor_addr last_dead; // its exit_msg may arrive after its down_msg
  std::uint64_t generation = 0;
  caf::timespan backoff{0};
  bool exit_sent = false;
};

struct supervisor_state {
  static inline const char* name = "supervisor";
  std::vector<child_slot> children;
  supervisor_options options;
  std::deque<caf::actor_clock::time_point> recent_crashes;
  bool stopping = false;
  caf::error stop_reason;
};

using supervisor_pointer = caf::stateful_actor<supervisor_state>*;

void start_child(supervisor_pointer self, std::size_t index) {
  auto& slot = self->state.children[index];
  ++slot.generation;
  slot.exit_sent = false;
  slot.handle = slot.spec.start(self);
  self->link_to(slot.handle);
  self->monitor(slot.handle);
  if (self->state.options.metrics) {
    self->state.options.metrics->count_actor(slot.spec.name, +1);
  }
  self->delayed_send(self, self->state.options.stable_after, protocol::stable_atom_v, index,
                     slot.generation);
}

// Stops the last running child; called again on each down_msg until none is left.
void stop_next(supervisor_pointer self) {
  auto& children = self->state.children;
  for (auto i = children.rbegin(); i != children.rend(); ++i) {
    if (i->handle) {
      if (!i->exit_sent) {
        i->exit_sent = true;
        self->send_exit(i->handle, self->state.stop_reason);
      }
      return; // wait for its down_msg before stopping the one started before it
    }
  }
  self->quit(self->state.stop_reason);
}

void begin_stop(supervisor_pointer self, caf::error reason) {
  if (!self->state.stopping) {
    self->state.stopping = true;
    self->state.stop_reason = std::move(reason);
  }
  stop_next(self);
}

// Returns true if this crash exceeds the restart intensity.
bool too_many_crashes(supervisor_pointer self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  st.recent_crashes.push_back(now);
  while (!st.recent_crashes.empty()
         && now - st.recent_crashes.front() > st.options.restart_window) {
    st.recent_crashes.pop_front();
  }
  return st.recent_crashes.size() > st.options.max_restarts;
}

void on_child_down(supervisor_pointer self, std::size_t index, caf::error reason) {
  auto& st = self->state;
  auto& slot = st.children[index];
  slot.last_dead = slot.handle.address();
  slot.handle = nullptr;
  if (st.options.metrics) {
    st.options.metrics->count_actor(slot.spec.name, -1);
  }
  if (st.stopping) {
    stop_next(self);
    return;
  }
  if (!reason) {
    // A permanent child has no business exiting on its own: treat it as a crash.
    reason = caf::make_error(caf::sec::runtime_error, "child exited normally: " + slot.spec.name);
  }
  if (too_many_crashes(self)) {
    begin_stop(self, std::move(reason)); // escalate
    return;
  }
  self->delayed_send(self, slot.backoff, protocol::restart_atom_v, index, slot.generation);
  slot.backoff = std::min(slot.backoff * 2, st.options.max_backoff);
}

caf::behavior supervisor(supervisor_pointer self, std::vector<child_spec> children,
                         supervisor_options options) {
  auto& st = self->state;
  st.options = std::move(options);
  for (auto& spec : children) {
    child_slot slot;
    slot.spec = std::move(spec);
    slot.backoff = st.options.min_backoff;
    st.children.push_back(std::move(slot));
  }
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& kids = self->state.children;
    for (std::size_t i = 0; i < kids.size(); ++i) {
      if (kids[i].handle && kids[i].handle.address() == msg.source) {
        on_child_down(self, i, std::move(msg.reason));
        return;
      }
    }
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (const auto& slot : self->state.children) {
      if (msg.source == slot.handle.address() || msg.source == slot.last_dead) {
        return; // a child's link: its down_msg drives what happens next
      }
    }
    if (msg.reason == caf::exit_reason::kill) {
      self->quit(msg.reason);
      return;
    }
    begin_stop(self, std::move(msg.reason));
  });
  for (std::size_t i = 0; i < st.children.size(); ++i) {
    start_child(self, i);
  }
  return {
    [self](protocol::restart_atom, std::size_t index, std::uint64_t generation) {
      auto& slot = self->state.children.at(index);
      if (!self->state.stopping && !slot.handle && slot.generation == generation) {
        start_child(self, index);
      }
    },
    [self](protocol::stable_atom, std::size_t index, std::uint64_t generation) {
      auto& slot = self->state.children.at(index);
      if (slot.handle && slot.generation == generation) {
        slot.backoff = self->state.options.min_backoff;
      }
    },
    [self](protocol::ready_atom) {
      protocol::readiness result;
      result.ready = !self->state.stopping;
      for (const auto& slot : self->state.children) {
        const char* status = slot.handle ? "ok" : "restarting";
        if (self->state.stopping) {
          status = "stopping";
        }
        result.checks.emplace(slot.spec.name, status);
        result.ready = result.ready && slot.handle;
      }
      return result;
    },
    [self](caf::get_atom, const std::string& name) {
      for (const auto& slot : self->state.children) {
        if (slot.spec.name == name) {
          return slot.handle;
        }
      }
      return caf::actor{};
    },
  };
}

} // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, const std::string& name,
                            std::vector<child_spec> children, supervisor_options options) {
  if (options.metrics) {
    options.metrics->count_actor(name, +1);
    auto metrics = options.metrics;
    auto handle = sys.spawn(supervisor, std::move(children), std::move(options));
    handle->attach_functor([metrics, name] { metrics->count_actor(name, -1); });
    return handle;
  }
  return sys.spawn(supervisor, std::move(children), std::move(options));
}

} // namespace troupe::actors

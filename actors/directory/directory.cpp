#include "actors/directory/directory.hpp"

#include "actors/metrics/metrics_registry.hpp"
#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <unordered_map>
#include <vector>

namespace troupe::actors {

namespace {

// -- tenant --------------------------------------------------------------------------------

struct tenant_state {
  static inline const char* name = "tenant";
  protocol::tenant_record record;
};

protocol::tenant_actor::behavior_type
tenant(protocol::tenant_actor::stateful_pointer<tenant_state> self,
       protocol::tenant_record record) {
  self->state.record = std::move(record);
  return {
    [self](protocol::resolve_atom) -> caf::result<protocol::tenant_record> {
      if (self->state.record.status == "suspended") {
        return caf::make_error(protocol::errc::tenant_suspended);
      }
      return self->state.record;
    },
  };
}

// -- directory -------------------------------------------------------------------------------

using record_promise = caf::typed_response_promise<protocol::tenant_record>;

struct active_tenant {
  protocol::tenant_actor actor;
  std::string slug;
  caf::actor_clock::time_point last_used;
};

struct directory_state {
  static inline const char* name = "directory";
  directory_options options;
  std::unordered_map<std::string, active_tenant> active; // by tenant id
  std::unordered_map<std::string, std::string> ids_by_slug;
  std::unordered_map<std::string, std::vector<record_promise>> activating; // by key
};

using directory_pointer = protocol::directory_actor::stateful_pointer<directory_state>;

void count(directory_pointer self, int delta) {
  if (self->state.options.metrics) {
    self->state.options.metrics->count_actor("tenant", delta);
  }
}

// Forgets an active tenant and stops its actor; its down_msg then finds nothing to do.
void passivate(directory_pointer self, const std::string& id) {
  auto& st = self->state;
  auto i = st.active.find(id);
  if (i == st.active.end()) {
    return;
  }
  st.ids_by_slug.erase(i->second.slug);
  self->send_exit(i->second.actor, caf::exit_reason::user_shutdown);
  st.active.erase(i);
  count(self, -1);
}

const std::string* active_id(directory_pointer self, const std::string& key) {
  auto& st = self->state;
  if (st.active.count(key) != 0) {
    return &st.active.find(key)->first;
  }
  if (auto s = st.ids_by_slug.find(key); s != st.ids_by_slug.end()) {
    return &s->second;
  }
  return nullptr;
}

void activated(directory_pointer self, const std::string& key, protocol::tenant_record record) {
  auto& st = self->state;
  auto waiting = std::move(st.activating[key]);
  st.activating.erase(key);
  if (active_id(self, record.id) == nullptr) {
    auto actor = self->spawn<caf::linked + caf::monitored>(tenant, record);
    st.active.emplace(record.id, active_tenant{actor, record.slug, self->clock().now()});
    st.ids_by_slug[record.slug] = record.id;
    count(self, +1);
  }
  auto& entry = st.active.at(record.id);
  for (auto& rp : waiting) {
    rp.delegate(entry.actor, protocol::resolve_atom_v);
  }
}

void activation_failed(directory_pointer self, const std::string& key, const caf::error& err) {
  auto waiting = std::move(self->state.activating[key]);
  self->state.activating.erase(key);
  for (auto& rp : waiting) {
    rp.deliver(err);
  }
}

protocol::directory_actor::behavior_type directory(directory_pointer self,
                                                   directory_options options) {
  self->state.options = std::move(options);
  self->system().registry().put(protocol::directory_key, self);
  // Tenants are linked children: their crash must not take the directory down.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (const auto& [id, entry] : self->state.active) {
      if (entry.actor.address() == msg.source) {
        return;
      }
    }
    self->quit(msg.reason);
  });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    for (auto i = st.active.begin(); i != st.active.end(); ++i) {
      if (i->second.actor.address() == msg.source) {
        // Crashed (passivated ones were erased first): the next use re-activates it.
        st.ids_by_slug.erase(i->second.slug);
        st.active.erase(i);
        count(self, -1);
        return;
      }
    }
  });
  self->delayed_send(self, self->state.options.sweep_interval, protocol::sweep_atom_v);
  return {
    [self](protocol::resolve_atom, const std::string& key) -> caf::result<protocol::tenant_record> {
      auto& st = self->state;
      if (const auto* id = active_id(self, key)) {
        auto& entry = st.active.at(*id);
        entry.last_used = self->clock().now();
        return self->delegate(entry.actor, protocol::resolve_atom_v);
      }
      auto rp = self->make_response_promise<protocol::tenant_record>();
      auto& waiting = st.activating[key];
      waiting.push_back(rp);
      if (waiting.size() > 1) {
        return rp; // an activation of this key is under way
      }
      auto loader = st.options.loader ? st.options.loader() : protocol::tenant_loader_actor{};
      if (!loader) {
        activation_failed(self, key,
                          caf::make_error(protocol::errc::service_unavailable, "no loader"));
        return rp;
      }
      self->request(loader, st.options.load_timeout, caf::get_atom_v, key)
        .then(
          [self, key](protocol::tenant_record& record) { activated(self, key, std::move(record)); },
          [self, key](caf::error& err) { activation_failed(self, key, err); });
      return rp;
    },
    [self](protocol::invalidate_atom, const std::string& id) { passivate(self, id); },
    [self](caf::get_atom) { return static_cast<std::uint64_t>(self->state.active.size()); },
    [self](caf::get_atom, const std::string& id) {
      auto i = self->state.active.find(id);
      return i == self->state.active.end() ? protocol::tenant_actor{} : i->second.actor;
    },
    [self](protocol::sweep_atom) {
      auto& st = self->state;
      const auto now = self->clock().now();
      std::vector<std::string> idle;
      for (const auto& [id, entry] : st.active) {
        if (now - entry.last_used >= st.options.idle_timeout) {
          idle.push_back(id);
        }
      }
      for (const auto& id : idle) {
        passivate(self, id);
      }
      self->delayed_send(self, st.options.sweep_interval, protocol::sweep_atom_v);
    },
  };
}

} // namespace

protocol::directory_actor spawn_directory(caf::local_actor* parent, directory_options options) {
  return parent->spawn(directory, std::move(options));
}

protocol::directory_actor spawn_directory(caf::actor_system& sys, directory_options options) {
  return sys.spawn(directory, std::move(options));
}

} // namespace troupe::actors

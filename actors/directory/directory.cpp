#include "actors/directory/directory.hpp"

#include "actors/directory/tenant.hpp"
#include "actors/metrics/metrics_registry.hpp"
#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace troupe::actors {

namespace {

// -- directory -------------------------------------------------------------------------------

// What waits for an activation: called with the active tenant, or with the error.
using waiter = std::function<void(const protocol::tenant_actor*, const caf::error&)>;

struct active_tenant {
  protocol::tenant_actor actor;
  std::string slug;
  caf::actor_clock::time_point last_used;
  // Not passivated before this: it holds state that must outlive idleness (the failed
  // logins its throttle counts, docs/auth.md "Login").
  caf::actor_clock::time_point keep_until;
};

struct directory_state {
  static inline const char* name = "directory";
  directory_options options;
  std::unordered_map<std::string, active_tenant> active; // by tenant id
  std::unordered_map<std::string, std::string> ids_by_slug;
  std::vector<caf::actor_addr> retiring; // passivated, finishing their accepted work
  std::unordered_map<std::string, std::vector<waiter>> activating; // by key
};

using directory_pointer = protocol::directory_actor::stateful_pointer<directory_state>;

void count(directory_pointer self, int delta) {
  if (self->state.options.metrics) {
    self->state.options.metrics->count_actor("tenant", delta);
  }
}

// Forgets an active tenant and retires its actor: it finishes the work it accepted (their
// commits must reach their callers), then stops; its down_msg then finds nothing to do. The
// next use activates a fresh one, which reloads the tenant and its chain head.
void passivate(directory_pointer self, const std::string& id) {
  auto& st = self->state;
  auto i = st.active.find(id);
  if (i == st.active.end()) {
    return;
  }
  st.ids_by_slug.erase(i->second.slug);
  self->send(i->second.actor, protocol::retire_atom_v);
  st.retiring.push_back(i->second.actor.address());
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
  const auto id = record.id;
  if (active_id(self, id) == nullptr) {
    const auto slug = record.slug;
    auto actor = spawn_tenant(self, std::move(record), st.options.tenant);
    st.active.emplace(id, active_tenant{actor, slug, self->clock().now(), {}});
    st.ids_by_slug[slug] = id;
    count(self, +1);
  }
  const auto actor = st.active.at(id).actor;
  for (auto& w : waiting) {
    w(&actor, caf::error{});
  }
}

void activation_failed(directory_pointer self, const std::string& key, const caf::error& err) {
  auto waiting = std::move(self->state.activating[key]);
  self->state.activating.erase(key);
  for (auto& w : waiting) {
    w(nullptr, err);
  }
}

// Calls `then` with the active tenant for `key` (an id or slug), activating it first if
// needed (one load per key, however many wait), or with the activation's error.
void with_tenant(directory_pointer self, const std::string& key, waiter then) {
  auto& st = self->state;
  if (const auto* id = active_id(self, key)) {
    auto& entry = st.active.at(*id);
    entry.last_used = self->clock().now();
    then(&entry.actor, caf::error{});
    return;
  }
  auto& waiting = st.activating[key];
  waiting.push_back(std::move(then));
  if (waiting.size() > 1) {
    return; // an activation of this key is under way
  }
  auto loader = st.options.loader ? st.options.loader() : protocol::tenant_loader_actor{};
  if (!loader) {
    activation_failed(self, key, caf::make_error(protocol::errc::service_unavailable, "no loader"));
    return;
  }
  self->request(loader, st.options.load_timeout, caf::get_atom_v, key)
    .then([self, key](protocol::tenant_record& record) { activated(self, key, std::move(record)); },
          [self, key](caf::error& err) { activation_failed(self, key, err); });
}

// Forwards a request to the tenant for `key` and answers the caller with the tenant's reply.
template <class Result, class... Ts>
caf::result<Result> forward(directory_pointer self, const std::string& key, Ts... xs) {
  auto rp = self->make_response_promise<Result>();
  with_tenant(self, key,
              [rp, xs...](const protocol::tenant_actor* actor, const caf::error& err) mutable {
                if (actor == nullptr) {
                  rp.deliver(err);
                } else {
                  rp.delegate(*actor, xs...);
                }
              });
  return rp;
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
    auto& retiring = self->state.retiring;
    if (auto r = std::find(retiring.begin(), retiring.end(), msg.source); r != retiring.end()) {
      retiring.erase(r); // a passivated tenant finished
      return;
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
      return forward<protocol::tenant_record>(self, key, protocol::resolve_atom_v);
    },
    [self](protocol::run_atom, const std::string& key,
           protocol::audited_work& work) -> caf::result<protocol::audited_result> {
      return forward<protocol::audited_result>(self, key, protocol::run_atom_v, std::move(work));
    },
    [self](protocol::verify_atom,
           const std::string& key) -> caf::result<protocol::audit_verification> {
      return forward<protocol::audit_verification>(self, key, protocol::verify_atom_v);
    },
    [self](protocol::authenticate_atom, const std::string& key,
           protocol::credential& c) -> caf::result<protocol::authenticated> {
      return forward<protocol::authenticated>(self, key, protocol::authenticate_atom_v,
                                              std::move(c));
    },
    [self](protocol::authenticate_atom, const std::string& key, protocol::credential& c,
           protocol::auth_callback& done) {
      with_tenant(self, key,
                  [self, c = std::move(c), done](const protocol::tenant_actor* actor,
                                                 const caf::error& err) mutable {
                    if (actor == nullptr) {
                      done(err);
                    } else {
                      self->send(*actor, protocol::authenticate_atom_v, std::move(c), done);
                    }
                  });
    },
    [self](protocol::throttle_atom, const std::string& key,
           const std::string& account) -> caf::result<std::uint32_t> {
      return forward<std::uint32_t>(self, key, protocol::throttle_atom_v, account);
    },
    [self](protocol::throttle_atom, const std::string& key, const std::string& account,
           bool failed) {
      with_tenant(self, key,
                  [self, account, failed](const protocol::tenant_actor* actor, const caf::error&) {
                    if (actor == nullptr) {
                      return;
                    }
                    if (failed) {
                      for (auto& [id, entry] : self->state.active) {
                        if (entry.actor == *actor) {
                          entry.keep_until = self->clock().now() + std::chrono::minutes{15};
                        }
                      }
                    }
                    self->send(*actor, protocol::throttle_atom_v, account, failed);
                  });
    },
    [self](protocol::session_atom, const std::string& key, const std::string& id,
           protocol::audited_work& work) -> caf::result<protocol::audited_result> {
      return forward<protocol::audited_result>(self, key, protocol::session_atom_v, id,
                                               std::move(work));
    },
    [self](protocol::idempotency_atom, const std::string& key,
           protocol::idempotency_call& call) -> caf::result<protocol::idempotency_answer> {
      return forward<protocol::idempotency_answer>(self, key, protocol::idempotency_atom_v,
                                                   std::move(call));
    },
    [self](protocol::usage_atom, const std::string& key) -> caf::result<std::string> {
      return forward<std::string>(self, key, protocol::usage_atom_v);
    },
    [self](protocol::invalidate_atom, const std::string& id) { passivate(self, id); },
    [self](protocol::update_atom, protocol::tenant_record& record) {
      auto i = self->state.active.find(record.id);
      if (i != self->state.active.end()) {
        self->send(i->second.actor, protocol::update_atom_v, std::move(record));
      }
    },
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
        if (now - entry.last_used >= st.options.idle_timeout && now >= entry.keep_until) {
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

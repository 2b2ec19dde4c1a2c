#include "actors/jobs/dispatcher.hpp"

#include "actors/auth/service_kit.hpp"
#include "actors/features/features.hpp"
#include "actors/metrics/metrics_registry.hpp"
#include "actors/webhooks/dispatcher.hpp"
#include "protocol/crypto.hpp"
#include "protocol/jobs.hpp"
#include "protocol/logging.hpp"
#include "storage/jobs.hpp"
#include "storage/listener.hpp"
#include "storage/webhooks.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/local_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::storage::job_outcome)

namespace troupe::actors {

namespace {

using json = nlohmann::json;

struct shared_config {
  job_dispatcher_options options;
  std::shared_ptr<spdlog::logger> log;
};

// -- job_runner: one per running job
// ----------------------------------------------------------------

struct runner_state {
  static inline const char* name = "job_runner";
  std::shared_ptr<const shared_config> config;
  caf::actor dispatcher;
  storage::claimed_job job;
  features::invocation in;
  caf::actor handler;
  std::int64_t started_ms = 0;
  bool cancelled = false;
  bool done = false;
};

using runner_pointer = caf::stateful_actor<runner_state>*;

// Reports the attempt's outcome to the dispatcher, stops the handler and ends.
void finish(runner_pointer self, const std::string& state, std::string error,
            const json& result = nullptr) {
  auto& st = self->state;
  if (st.done) {
    return;
  }
  st.done = true;
  const auto& options = st.config->options;
  storage::job_outcome out;
  out.id = st.job.id;
  out.n = st.job.attempt;
  out.started_ms = st.started_ms;
  out.finished_ms = storage::unix_now_ms();
  out.error = std::move(error);
  out.state = state;
  if (state == "succeeded") {
    out.result = result.dump(-1, ' ', false, json::error_handler_t::replace);
  } else if (state == "failed") {
    if (st.cancelled) {
      out.state = "cancelled";
    } else if (st.job.attempt < st.job.max_attempts) {
      thread_local std::mt19937_64 random{std::random_device{}()};
      std::uniform_real_distribution<double> unit{0.0, 1.0};
      out.state = "retrying";
      out.retry_at_ms = out.finished_ms
                        + protocol::jobs::retry_delay_ms(
                          options.retry_base_ms, options.retry_max_ms,
                          static_cast<std::uint32_t>(st.job.attempt), unit(random));
    } else {
      out.state = "discarded";
    }
  }
  caf::anon_send(st.dispatcher, protocol::attempted_atom_v, st.job.tenant_id, std::move(out));
  if (st.handler) {
    self->send_exit(st.handler, caf::exit_reason::user_shutdown);
  }
  self->quit();
}

caf::behavior job_runner(runner_pointer self, std::shared_ptr<const shared_config> config,
                         caf::actor dispatcher, storage::claimed_job job) {
  auto& st = self->state;
  st.config = std::move(config);
  st.dispatcher = std::move(dispatcher);
  st.job = std::move(job);
  st.started_ms = storage::unix_now_ms();
  const auto& options = st.config->options;
  if (st.job.cancel_requested) {
    st.cancelled = true;
    finish(self, "failed", "cancelled");
    return {};
  }
  if (st.job.attempt > st.job.max_attempts) {
    finish(self, "discarded", "lease expired on its last attempt: the node running it stopped");
    return {};
  }
  const auto* entry = options.catalog->find(features::kind::job, st.job.type);
  if (entry == nullptr) {
    finish(self, "failed", "no handler for job type " + st.job.type + " on this node");
    return {};
  }
  auto& in = st.in;
  in.name = st.job.type;
  in.kind = features::kind::job;
  in.tenant_id = st.job.tenant_id;
  in.caller.type = "system";
  in.origin.actor_type = "system";
  in.origin.request_id = "job:" + st.job.id;
  in.origin.traceparent = st.job.traceparent;
  in.params = json::parse(st.job.payload, nullptr, false);
  if (in.params.is_discarded()) {
    in.params = json::object();
  }
  in.job_id = st.job.id;
  in.attempt = st.job.attempt;
  in.max_attempts = st.job.max_attempts;
  const std::chrono::seconds timeout{st.job.timeout_s};
  in.deadline_ms = st.started_ms + timeout.count() * 1000;
  st.handler = features::spawn_feature(self, features::catalog::of(*entry).actor);
  self->request(st.handler, timeout, in)
    .then(
      [self](features::outcome& o) {
        if (o.ok) {
          finish(self, "succeeded", {}, o.result);
        } else {
          finish(self, "failed", o.error.empty() ? std::string{"failed"} : o.error);
        }
      },
      [self](caf::error& err) {
        auto& s = self->state;
        s.in.stop->store(true);
        if (err == caf::sec::request_timeout) {
          finish(self, "failed",
                 "timed out after " + std::to_string(s.job.timeout_s) + " s (timeout_s)");
        } else {
          finish(self, "failed", "handler failed: " + self->system().render(err));
        }
      });
  return {
    [self](protocol::retire_atom) {
      // Cancelled: the handler sees `stopping()`; if it has not answered within the grace
      // period, the attempt ends as cancelled anyway.
      auto& s = self->state;
      s.cancelled = true;
      s.in.stop->store(true);
      self->delayed_send(self, s.config->options.cancel_grace, protocol::sweep_atom_v);
    },
    [self](protocol::sweep_atom) { finish(self, "failed", "cancelled"); },
  };
}

// -- job_dispatcher
// -----------------------------------------------------------------------------------

struct held_job {
  storage::claimed_job job;
  caf::actor runner; // empty until it starts
};

struct dispatcher_state {
  static inline const char* name = "job_dispatcher";
  std::shared_ptr<shared_config> config;
  std::string instance;
  std::unordered_map<std::string, held_job> held; // claimed and not yet recorded
  // Held, not started: by priority, then in the order claimed (claims come ordered by due time).
  std::set<std::tuple<std::int32_t, std::uint64_t, std::string>> waiting;
  std::uint64_t claimed_seq = 0;
  std::uint32_t running = 0;
  std::uint32_t prefetch = 0;
  bool claiming = false;
  bool again = false;
  std::map<std::string, std::vector<storage::job_outcome>> results; // by tenant
  std::size_t buffered = 0;
  std::size_t flushing = 0; // record transactions in flight
  bool flush_armed = false;
  bool draining = false;
  bool releasing = false;
  // The node's recent pace: outcomes in the current 100 ms window and in the last full one.
  std::chrono::steady_clock::time_point window_start = std::chrono::steady_clock::now();
  std::uint32_t window_count = 0;
  std::uint32_t last_window = 0;
  caf::error exit_reason;
  std::int64_t next_wakeup_ms = 0;
};

using dispatcher_pointer = caf::stateful_actor<dispatcher_state>*;

void round(dispatcher_pointer self);
void maybe_quit(dispatcher_pointer self);

void start_jobs(dispatcher_pointer self) {
  auto& st = self->state;
  while (!st.draining && st.running < st.config->options.concurrency && !st.waiting.empty()) {
    auto id = std::get<2>(*st.waiting.begin());
    st.waiting.erase(st.waiting.begin());
    auto i = st.held.find(id);
    if (i == st.held.end()) {
      continue;
    }
    ++st.running;
    i->second.runner = self->spawn(job_runner, std::shared_ptr<const shared_config>{st.config},
                                   caf::actor_cast<caf::actor>(self), i->second.job);
  }
}

void hold(dispatcher_pointer self, std::vector<storage::claimed_job> claimed) {
  auto& st = self->state;
  for (auto& job : claimed) {
    auto id = job.id;
    if (st.held.count(id) != 0) {
      continue; // claimed again after its lease ran out while we still hold it: keep ours
    }
    st.waiting.emplace(job.priority, st.claimed_seq++, id);
    st.held.emplace(std::move(id), held_job{std::move(job), {}});
  }
  start_jobs(self);
}

// job.discarded events for jobs that ended discarded, in the recording transaction.
caf::error publish_discarded(storage::pg_transaction& tx,
                             const std::vector<storage::recorded_job>& recorded, bool& published) {
  storage::job_repository jobs{tx};
  storage::webhook_repository hooks{tx};
  for (const auto& r : recorded) {
    if (r.state != "discarded") {
      continue;
    }
    auto row = jobs.job(r.id);
    if (!row) {
      return std::move(row.error());
    }
    if (!*row) {
      continue;
    }
    auto event
      = hooks.publish("job.discarded", json{{"job", storage::job_json(**row, false)}}.dump());
    if (!event) {
      return std::move(event.error());
    }
    published = published || event->deliveries > 0;
  }
  return {};
}

void flush(dispatcher_pointer self) {
  auto& st = self->state;
  st.flush_armed = false;
  auto results = std::move(st.results);
  st.results.clear();
  st.buffered = 0;
  for (auto& [tenant, list] : results) {
    const auto count = list.size();
    auto instance = st.instance;
    auto shared = std::make_shared<std::vector<storage::job_outcome>>(std::move(list));
    ++st.flushing;
    struct recorded {
      std::vector<storage::recorded_job> jobs;
      bool published = false;
    };
    kit::read_tx<recorded>(
      self, tenant,
      [shared, instance](storage::pg_transaction& tx) -> caf::expected<recorded> {
        storage::job_repository repo{tx};
        auto rows = repo.record(*shared, instance);
        if (!rows) {
          return std::move(rows.error());
        }
        recorded out;
        out.jobs = std::move(*rows);
        if (auto err = publish_discarded(tx, out.jobs, out.published)) {
          return err;
        }
        return out;
      },
      [self, shared, count](caf::expected<recorded> r) {
        auto& s = self->state;
        --s.flushing;
        if (!r) {
          // The jobs stay leased to us until the lease runs out: then they run again.
          s.config->log->error(protocol::event("cannot record job outcomes")
                                 .add("count", static_cast<std::uint64_t>(count))
                                 .add("error", self->system().render(r.error()))
                                 .str());
        } else if (r->published) {
          poke_webhook_dispatcher(self->system());
        }
        for (const auto& o : *shared) {
          s.held.erase(o.id);
        }
        maybe_quit(self);
        round(self);
      });
  }
}

// Claims in each of `tenants`; `settle`: also move their places in the queue (a claim
// because of a poke does not: under a stream of single enqueues it would contend with every
// enqueuer for the tenant's queue row; the next round settles it).
void claim_in(dispatcher_pointer self, const std::vector<std::string>& tenants,
              std::uint32_t capacity, bool settle) {
  auto& st = self->state;
  struct progress {
    std::size_t left = 0;
    bool full = false;
  };
  auto p = std::make_shared<progress>();
  p->left = tenants.size();
  const auto per_tenant
    = std::max<std::uint32_t>(1, capacity / static_cast<std::uint32_t>(tenants.size()));
  st.claiming = true;
  for (const auto& tenant : tenants) {
    const auto lease_s = st.config->options.lease_s;
    auto instance = st.instance;
    using claimed
      = std::pair<std::vector<storage::claimed_job>, std::vector<storage::fired_schedule>>;
    kit::read_tx<claimed>(
      self, tenant,
      [per_tenant, lease_s, instance, settle](storage::pg_transaction& tx) {
        storage::job_repository repo{tx};
        return repo.claim(per_tenant, lease_s, instance, settle);
      },
      [self, p, per_tenant](caf::expected<claimed> got) {
        auto& s = self->state;
        if (!got) {
          s.config->log->error(protocol::event("cannot claim jobs")
                                 .add("error", self->system().render(got.error()))
                                 .str());
        } else {
          for (const auto& f : got->second) {
            s.config->log->info(protocol::event("schedule fired")
                                  .add("schedule", f.name)
                                  .add("due_at", f.due_at)
                                  .add("job", f.job_id)
                                  .str());
          }
          p->full = p->full || got->first.size() >= per_tenant || !got->second.empty();
          if (s.draining) {
            // Claimed while shutting down: give them back at once.
            for (auto& job : got->first) {
              s.waiting.emplace(job.priority, s.claimed_seq++, job.id);
              s.held.emplace(job.id, held_job{std::move(job), {}});
            }
          } else {
            hold(self, std::move(got->first));
          }
        }
        if (--p->left == 0) {
          s.claiming = false;
          if (p->full || s.again) {
            round(self);
          }
          maybe_quit(self);
        }
      });
  }
}

// Jobs finished per 100 ms lately (0 after 200 ms without any).
std::uint32_t pace(dispatcher_pointer self) {
  auto& st = self->state;
  const auto age = std::chrono::steady_clock::now() - st.window_start;
  if (age >= std::chrono::milliseconds{200}) {
    return st.window_count / 2;
  }
  return std::max(st.last_window, st.window_count);
}

// How many jobs a claim may take now: the free slots, plus, when this node finishes jobs
// quickly, about 400 ms of its pace (up to the prefetch bound). Slow jobs are thus claimed only
// for free slots and stay in the queue for other nodes; fast ones come in large batches.
std::uint32_t capacity(dispatcher_pointer self) {
  auto& st = self->state;
  const auto held = static_cast<std::uint32_t>(st.held.size());
  if (held >= st.prefetch) {
    return 0;
  }
  const auto busy = st.running + static_cast<std::uint32_t>(st.waiting.size());
  const auto concurrency = st.config->options.concurrency;
  const auto free_slots = busy >= concurrency ? 0 : concurrency - busy;
  const auto ahead = std::min(st.prefetch, 4 * pace(self));
  return std::min(st.prefetch - held, free_slots + ahead);
}

// One round: which tenants have work due, then a claim in each.
void round(dispatcher_pointer self) {
  auto& st = self->state;
  if (st.draining) {
    return;
  }
  if (st.claiming) {
    st.again = true;
    return;
  }
  const auto free = capacity(self);
  if (free == 0 || (free < st.prefetch / 4 && 4 * pace(self) >= st.prefetch)) {
    return; // finished jobs start the next round
  }
  st.claiming = true;
  st.again = false;
  kit::read_tx<storage::job_queue_view>(
    self, std::string{},
    [](storage::pg_transaction& tx) { return storage::due_job_tenants(tx, 64); },
    [self](caf::expected<storage::job_queue_view> view) {
      auto& s = self->state;
      s.claiming = false;
      if (s.draining) {
        maybe_quit(self);
        return;
      }
      if (!view) {
        s.config->log->warn(protocol::event("cannot read the job queue")
                              .add("error", self->system().render(view.error()))
                              .str());
        return;
      }
      if (view->next_ms > 0) {
        // Wake up when the next job is due, if that is sooner than the next poll.
        const auto wait = view->next_ms - storage::unix_now_ms();
        if (wait < s.config->options.poll_interval.count()
            && (s.next_wakeup_ms == 0 || view->next_ms < s.next_wakeup_ms)) {
          s.next_wakeup_ms = view->next_ms;
          self->delayed_send(self, std::chrono::milliseconds{std::max<std::int64_t>(1, wait)},
                             protocol::poke_atom_v);
        }
      }
      if (view->due.empty() || s.draining) {
        if (s.again) {
          round(self);
        }
        return;
      }
      claim_in(self, view->due, capacity(self), true);
    });
}

// Renews the leases of every held job, per tenant; learns of cancels made on other nodes.
void heartbeat(dispatcher_pointer self) {
  auto& st = self->state;
  std::map<std::string, std::vector<std::string>> by_tenant;
  for (const auto& [id, h] : st.held) {
    by_tenant[h.job.tenant_id].push_back(id);
  }
  for (auto& [tenant, ids] : by_tenant) {
    const auto lease_s = st.config->options.lease_s;
    auto instance = st.instance;
    auto shared = std::make_shared<std::vector<std::string>>(std::move(ids));
    using held_list = std::vector<std::pair<std::string, bool>>;
    kit::read_tx<held_list>(
      self, tenant,
      [shared, lease_s, instance](storage::pg_transaction& tx) {
        storage::job_repository repo{tx};
        return repo.heartbeat(*shared, lease_s, instance);
      },
      [self, shared](caf::expected<held_list> still) {
        auto& s = self->state;
        if (!still) {
          s.config->log->warn(protocol::event("cannot renew job leases")
                                .add("error", self->system().render(still.error()))
                                .str());
          return;
        }
        for (const auto& [id, cancel] : *still) {
          auto i = s.held.find(id);
          if (cancel && i != s.held.end() && i->second.runner) {
            self->send(i->second.runner, protocol::retire_atom_v);
          }
        }
        if (still->size() < shared->size()) {
          s.config->log->warn(
            protocol::event("held jobs lost their lease (their outcomes will be ignored)")
              .add("jobs", static_cast<std::uint64_t>(shared->size() - still->size()))
              .str());
        }
      });
  }
}

// Shutdown: gives back what has not started, waits for the rest (up to drain_grace).
void release_waiting(dispatcher_pointer self, bool everything) {
  auto& st = self->state;
  std::map<std::string, std::vector<std::string>> by_tenant;
  for (const auto& [id, h] : st.held) {
    if (everything || !h.runner) {
      by_tenant[h.job.tenant_id].push_back(id);
    }
  }
  st.waiting.clear();
  if (by_tenant.empty()) {
    maybe_quit(self);
    return;
  }
  auto left = std::make_shared<std::size_t>(by_tenant.size());
  st.releasing = true;
  for (auto& [tenant, ids] : by_tenant) {
    auto instance = st.instance;
    auto shared = std::make_shared<std::vector<std::string>>(std::move(ids));
    kit::read_tx<std::size_t>(
      self, tenant,
      [shared, instance](storage::pg_transaction& tx) {
        storage::job_repository repo{tx};
        return repo.release(*shared, instance);
      },
      [self, shared, left](caf::expected<std::size_t> released) {
        auto& s = self->state;
        if (!released) {
          s.config->log->warn(protocol::event("cannot give back jobs (their leases will run out)")
                                .add("jobs", static_cast<std::uint64_t>(shared->size()))
                                .add("error", self->system().render(released.error()))
                                .str());
        } else {
          s.config->log->info(protocol::event("gave back jobs on shutdown")
                                .add("jobs", static_cast<std::uint64_t>(*released))
                                .str());
        }
        for (const auto& id : *shared) {
          auto i = s.held.find(id);
          if (i != s.held.end() && !i->second.runner) {
            s.held.erase(i);
          }
        }
        if (--*left == 0) {
          s.releasing = false;
          maybe_quit(self);
        }
      });
  }
}

void maybe_quit(dispatcher_pointer self) {
  auto& st = self->state;
  if (!st.draining || st.releasing || st.claiming || st.flushing > 0) {
    return;
  }
  if (st.running > 0) {
    return;
  }
  if (st.buffered > 0) {
    flush(self);
    return;
  }
  self->quit(st.exit_reason);
}

// A thread with its own connection LISTENs on `troupe_jobs`; a notification from another
// process ("<token> <tenant id>", sent when a job became due now) pokes this dispatcher for
// that tenant. The thread ends (within 100 ms) when the dispatcher does.
void listen(dispatcher_pointer self) {
  struct listener_thread {
    std::atomic<bool> stop{false};
    std::thread thread;
  };
  auto lt = std::make_shared<listener_thread>();
  const auto& options = self->state.config->options;
  lt->thread = std::thread{[lt, me = self->address(), conninfo = options.listen_conninfo,
                            token = options.token, log = self->state.config->log] {
    std::unique_ptr<storage::pg_listener> listener;
    bool warned = false;
    while (!lt->stop.load()) {
      if (!listener) {
        std::string error;
        listener = storage::pg_listener::open(conninfo, "troupe_jobs", error);
        if (!listener) {
          if (!warned) {
            log->warn(
              protocol::event("cannot listen for jobs of other nodes").add("error", error).str());
            warned = true;
          }
          for (int i = 0; i < 10 && !lt->stop.load(); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
          }
          continue;
        }
        warned = false;
      }
      bool ok = true;
      auto payloads = listener->wait(std::chrono::milliseconds{100}, ok);
      if (!ok) {
        listener.reset();
        continue;
      }
      for (const auto& p : payloads) {
        const auto space = p.find(' ');
        if (space == std::string::npos || p.compare(0, space, token) == 0) {
          continue; // our own: the service poked us directly
        }
        if (auto dispatcher = caf::actor_cast<caf::actor>(me)) {
          caf::anon_send(dispatcher, protocol::poke_atom_v, p.substr(space + 1));
        }
      }
    }
  }};
  self->attach_functor([lt] {
    lt->stop.store(true);
    if (lt->thread.joinable()) {
      lt->thread.join();
    }
  });
}

caf::behavior job_dispatcher(dispatcher_pointer self, job_dispatcher_options options) {
  auto& st = self->state;
  st.config = std::make_shared<shared_config>();
  st.config->options = options;
  st.config->log = protocol::make_logger("jobs");
  st.prefetch = options.prefetch > 0 ? options.prefetch : std::max(64u, 64 * options.concurrency);
  st.instance = options.node + "/" + protocol::crypto::hex(protocol::crypto::random_bytes(6));
  self->system().registry().put(job_dispatcher_key, self);
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& s = self->state;
    if (msg.reason == caf::exit_reason::kill || s.draining) {
      self->quit(msg.reason);
      return;
    }
    s.draining = true;
    s.exit_reason = msg.reason;
    s.config->log->info(protocol::event("draining jobs")
                          .add("running", static_cast<std::uint64_t>(s.running))
                          .add("not_started", static_cast<std::uint64_t>(s.waiting.size()))
                          .str());
    release_waiting(self, false);
    self->delayed_send(self, s.config->options.drain_grace, protocol::prune_atom_v);
  });
  if (!options.listen_conninfo.empty()) {
    listen(self);
  }
  self->send(self, protocol::tick_atom_v);
  self->delayed_send(self, options.heartbeat, protocol::sweep_atom_v);
  return {
    [self](protocol::tick_atom) {
      round(self);
      self->delayed_send(self, self->state.config->options.poll_interval, protocol::tick_atom_v);
    },
    [self](protocol::poke_atom) {
      self->state.next_wakeup_ms = 0;
      round(self);
    },
    [self](protocol::poke_atom, const std::string& tenant) {
      auto& s = self->state;
      const auto free = capacity(self);
      if (s.draining || s.claiming || free == 0) {
        round(self);
        return;
      }
      claim_in(self, {tenant}, free, false);
    },
    [self](protocol::sweep_atom) {
      heartbeat(self);
      self->delayed_send(self, self->state.config->options.heartbeat, protocol::sweep_atom_v);
    },
    [self](protocol::retire_atom, const std::string& job) {
      auto& s = self->state;
      auto i = s.held.find(job);
      if (i != s.held.end() && i->second.runner) {
        self->send(i->second.runner, protocol::retire_atom_v);
      }
    },
    [self](protocol::attempted_atom, const std::string& tenant, storage::job_outcome& o) {
      auto& s = self->state;
      --s.running;
      const auto now = std::chrono::steady_clock::now();
      if (now - s.window_start >= std::chrono::milliseconds{100}) {
        s.last_window = now - s.window_start >= std::chrono::milliseconds{200} ? 0 : s.window_count;
        s.window_count = 0;
        s.window_start = now;
      }
      ++s.window_count;
      if (auto i = s.held.find(o.id); i != s.held.end()) {
        i->second.runner = caf::actor{};
      }
      if (auto& m = s.config->options.metrics) {
        m->count_job(o.state);
      }
      s.results[tenant].push_back(std::move(o));
      start_jobs(self);
      constexpr std::size_t batch = 512;
      constexpr std::chrono::milliseconds linger{2};
      if (++s.buffered >= batch || s.draining) {
        flush(self);
      } else if (!s.flush_armed) {
        s.flush_armed = true;
        self->delayed_send(self, linger, protocol::flush_atom_v);
      }
      // Prefetch is 64 x concurrency, so half of it covers every free slot too.
      if (s.waiting.size() < s.prefetch / 2) {
        round(self);
      }
    },
    [self](protocol::flush_atom) { flush(self); },
    [self](protocol::prune_atom) {
      // The drain's grace is over: what still runs is given back to run again elsewhere.
      auto& s = self->state;
      if (s.running > 0) {
        s.config->log->warn(
          protocol::event("jobs still running after the drain grace: giving them back")
            .add("jobs", static_cast<std::uint64_t>(s.running))
            .str());
        for (auto& [id, h] : s.held) {
          if (h.runner) {
            self->send_exit(h.runner, caf::exit_reason::user_shutdown);
          }
        }
        s.running = 0;
        release_waiting(self, true);
      }
      maybe_quit(self);
    },
  };
}

} // namespace

caf::actor spawn_job_dispatcher(caf::local_actor* parent, job_dispatcher_options options) {
  return parent->spawn(job_dispatcher, std::move(options));
}

caf::actor spawn_job_runner(caf::actor_system& system, const job_dispatcher_options& options,
                            caf::actor report_to, const storage::claimed_job& job) {
  auto config = std::make_shared<shared_config>();
  config->options = options;
  config->log = protocol::make_logger("jobs");
  return system.spawn(job_runner, std::shared_ptr<const shared_config>{config},
                      std::move(report_to), job);
}

void poke_job_dispatcher(caf::actor_system& system, const std::string& tenant) {
  if (auto dispatcher = system.registry().get(job_dispatcher_key)) {
    caf::anon_send(caf::actor_cast<caf::actor>(dispatcher), protocol::poke_atom_v, tenant);
  }
}

void cancel_job_here(caf::actor_system& system, const std::string& job) {
  if (auto dispatcher = system.registry().get(job_dispatcher_key)) {
    caf::anon_send(caf::actor_cast<caf::actor>(dispatcher), protocol::retire_atom_v, job);
  }
}

} // namespace troupe::actors

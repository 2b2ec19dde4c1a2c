#include "actors/webhooks/dispatcher.hpp"

#include "actors/auth/service_kit.hpp"
#include "actors/metrics/metrics_registry.hpp"
#include "actors/webhooks/http_client.hpp"
#include "protocol/crypto.hpp"
#include "protocol/logging.hpp"
#include "protocol/webhooks.hpp"
#include "storage/webhooks.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/local_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/logger.h>

#include <deque>
#include <map>
#include <random>
#include <unordered_map>

namespace {
using claimed_batch = std::shared_ptr<const std::vector<troupe::storage::claimed_delivery>>;
// What an endpoint hears back from the HTTP client about one of its deliveries.
struct sent_delivery {
  troupe::storage::claimed_delivery delivery;
  std::int64_t started_ms = 0;
  troupe::actors::outbound_response response;
};
} // namespace

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(claimed_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sent_delivery)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::storage::attempt_result)

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

struct shared_config {
  webhook_dispatcher_options options;
  std::int64_t lease_s = 0;
  std::shared_ptr<http_client> client;
  std::shared_ptr<spdlog::logger> log;
};

// -- webhook_endpoint
// ------------------------------------------------------------------------------

struct queued {
  storage::claimed_delivery delivery;
  steady::time_point claimed;
};

struct endpoint_state {
  static inline const char* name = "webhook_endpoint";
  std::shared_ptr<const shared_config> config;
  caf::actor dispatcher;
  std::deque<queued> queue;
  std::uint32_t in_flight = 0;
  double tokens = 0;
  steady::time_point refilled;
  bool timer_armed = false;
  std::map<std::string, std::string> keys; // sealed secret → HMAC key
  std::mt19937_64 random{std::random_device{}()};
};

using endpoint_pointer = caf::stateful_actor<endpoint_state>*;

// The HMAC key of a sealed secret (cached: secrets change only on rotation).
std::optional<std::string> key_of(endpoint_pointer self, const std::string& endpoint,
                                  const std::string& sealed) {
  auto& st = self->state;
  if (auto i = st.keys.find(sealed); i != st.keys.end()) {
    return i->second;
  }
  auto secret = protocol::crypto::open(st.config->options.seal_key, sealed, endpoint);
  if (!secret) {
    return std::nullopt;
  }
  auto key = protocol::webhooks::secret_key(*secret);
  if (!key) {
    return std::nullopt;
  }
  if (st.keys.size() > 8) {
    st.keys.clear();
  }
  st.keys.emplace(sealed, *key);
  return key;
}

storage::attempt_result judge(endpoint_pointer self, const sent_delivery& sent) {
  const auto& options = self->state.config->options;
  const auto& r = sent.response;
  storage::attempt_result out;
  out.delivery_id = sent.delivery.id;
  out.endpoint_id = sent.delivery.endpoint_id;
  out.n = sent.delivery.attempt_count + 1;
  out.ordered = sent.delivery.ordered;
  out.at_ms = sent.started_ms;
  out.duration_ms = static_cast<std::int32_t>(r.duration_ms);
  if (r.status > 0) {
    out.status_code = r.status;
    out.response_body = r.body;
  }
  if (!r.error.empty()) {
    out.error = r.error;
  }
  std::uniform_real_distribution<double> unit{0.0, 1.0};
  const auto now = now_ms();
  auto outcome = protocol::webhooks::judge_attempt(
    r.status, r.retry_after, static_cast<std::uint32_t>(out.n), options.retry_schedule,
    unit(self->state.random), now / 1000);
  out.status = std::move(outcome.status);
  out.gone = outcome.gone;
  out.next_attempt_ms = now + outcome.delay_ms;
  return out;
}

void send_one(endpoint_pointer self, storage::claimed_delivery d) {
  auto& st = self->state;
  sent_delivery sent;
  sent.started_ms = now_ms();
  std::string error;
  auto target = protocol::webhooks::parse_url(d.url, error);
  auto key = key_of(self, d.endpoint_id, d.secret);
  if (!target || !key) {
    sent.response.error = target ? "the endpoint secret cannot be opened" : "bad URL: " + error;
    sent.delivery = std::move(d);
    self->send(self, protocol::attempted_atom_v, std::move(sent));
    ++st.in_flight;
    return;
  }
  std::vector<std::string> keys{*key};
  if (d.previous_secret) {
    if (auto old = key_of(self, d.endpoint_id, *d.previous_secret)) {
      keys.push_back(*old);
    }
  }
  const auto timestamp = sent.started_ms / 1000;
  outbound_request request;
  request.target = std::move(*target);
  request.headers = {{"webhook-id", d.event_id},
                     {"webhook-timestamp", std::to_string(timestamp)},
                     {"webhook-signature",
                      protocol::webhooks::signature_header(keys, d.event_id, timestamp, d.body)}};
  if (!d.traceparent.empty()) {
    request.headers.emplace_back("traceparent", d.traceparent);
  }
  request.body = d.body;
  sent.delivery = std::move(d);
  ++st.in_flight;
  // A weak handle: a request still in the client must not keep the endpoint alive.
  auto me = self->address();
  st.config->client->send(std::move(request),
                          [me, sent = std::move(sent)](outbound_response r) mutable {
                            if (auto endpoint = caf::actor_cast<caf::actor>(me)) {
                              sent.response = std::move(r);
                              caf::anon_send(endpoint, protocol::attempted_atom_v, std::move(sent));
                            }
                          });
}

// Sends what the concurrency and the rate limit allow; arms a timer for the rest.
void pump(endpoint_pointer self) {
  auto& st = self->state;
  const auto& options = st.config->options;
  const auto now = steady::now();
  // Deliveries that waited so long that their lease could run out before an attempt ends
  // are dropped: they will be claimed again (never sent twice at once).
  const auto keep_for
    = std::chrono::seconds{st.config->lease_s} - options.timeout - std::chrono::seconds{5};
  while (!st.queue.empty() && now - st.queue.front().claimed > keep_for) {
    st.queue.pop_front();
    caf::anon_send(st.dispatcher, protocol::attempted_atom_v, false);
  }
  while (!st.queue.empty()) {
    const auto& front = st.queue.front().delivery;
    const std::uint32_t limit = front.ordered ? 1 : options.endpoint_concurrency;
    if (st.in_flight >= limit) {
      return;
    }
    if (front.rate_limit_per_s) {
      const double rate = *front.rate_limit_per_s;
      const double elapsed = std::chrono::duration<double>(now - st.refilled).count();
      st.tokens = std::min(rate, st.tokens + elapsed * rate);
      st.refilled = now;
      if (st.tokens < 1.0) {
        if (!st.timer_armed) {
          st.timer_armed = true;
          const auto wait = std::chrono::milliseconds{
            static_cast<std::int64_t>(std::ceil((1.0 - st.tokens) / rate * 1000.0))};
          self->delayed_send(self, wait, protocol::tick_atom_v);
        }
        return;
      }
      st.tokens -= 1.0;
    }
    auto d = std::move(st.queue.front().delivery);
    st.queue.pop_front();
    send_one(self, std::move(d));
  }
}

caf::behavior webhook_endpoint(endpoint_pointer self, std::shared_ptr<const shared_config> config,
                               caf::actor dispatcher) {
  self->state.config = std::move(config);
  self->state.dispatcher = std::move(dispatcher);
  self->state.refilled = steady::now();
  self->state.tokens = 1.0;
  return {
    [self](protocol::deliver_atom, const claimed_batch& batch) {
      const auto now = steady::now();
      for (const auto& d : *batch) {
        self->state.queue.push_back({d, now});
      }
      pump(self);
    },
    [self](protocol::attempted_atom, const sent_delivery& sent) {
      auto& st = self->state;
      --st.in_flight;
      caf::anon_send(st.dispatcher, protocol::attempted_atom_v, sent.delivery.tenant_id,
                     judge(self, sent));
      pump(self);
    },
    [self](protocol::tick_atom) {
      self->state.timer_armed = false;
      pump(self);
    },
  };
}

// -- webhook_dispatcher
// ----------------------------------------------------------------------------

struct dispatcher_state {
  static inline const char* name = "webhook_dispatcher";
  std::shared_ptr<shared_config> config;
  std::string instance;
  std::unordered_map<std::string, caf::actor> endpoints;
  std::uint32_t in_flight = 0; // claimed, not yet recorded (or dropped)
  bool claiming = false;
  bool again = false;
  bool recover = true; // the next round looks at every queued tenant and recovers
  std::uint64_t ticks = 0;
  std::map<std::string, std::vector<storage::attempt_result>> results; // by tenant
  std::size_t buffered = 0;
  bool flush_armed = false;
};

using dispatcher_pointer = caf::stateful_actor<dispatcher_state>*;

void round(dispatcher_pointer self);

void hand_over(dispatcher_pointer self, std::vector<storage::claimed_delivery> claimed) {
  auto& st = self->state;
  std::map<std::string, std::vector<storage::claimed_delivery>> by_endpoint;
  for (auto& d : claimed) {
    by_endpoint[d.endpoint_id].push_back(std::move(d));
  }
  for (auto& [endpoint, list] : by_endpoint) {
    auto& actor = st.endpoints[endpoint];
    if (!actor) {
      // Linked: endpoints end with their dispatcher (and a crashed one restarts it all, which
      // claims again what it held).
      actor = self->spawn<caf::linked>(webhook_endpoint,
                                       std::shared_ptr<const shared_config>{st.config},
                                       caf::actor_cast<caf::actor>(self));
    }
    st.in_flight += static_cast<std::uint32_t>(list.size());
    self->send(actor, protocol::deliver_atom_v,
               claimed_batch{
                 std::make_shared<const std::vector<storage::claimed_delivery>>(std::move(list))});
  }
}

// Disables an endpoint (410 Gone, or `disable-after` failed deliveries) as audited system
// work that also emits `webhook.endpoint.disabled`.
void disable(dispatcher_pointer self, const std::string& tenant, const std::string& endpoint,
             const std::string& reason) {
  protocol::auth_call call;
  call.tenant_id = tenant;
  call.op = "disable_endpoint";
  auto log = self->state.config->log;
  kit::audited_tx<bool>(
    self, call, "webhook.endpoint.disabled",
    [endpoint, reason](storage::pg_transaction& tx,
                       protocol::audit_change& change) -> caf::expected<bool> {
      storage::webhook_repository repo{tx};
      auto disabled = repo.disable_endpoint(endpoint, reason);
      if (!disabled) {
        return disabled;
      }
      if (!*disabled) {
        return caf::make_error(protocol::errc::conflict, "already disabled");
      }
      auto event = repo.publish("webhook.endpoint.disabled",
                                json{{"endpoint_id", endpoint}, {"reason", reason}}.dump());
      if (!event) {
        return std::move(event.error());
      }
      change.resource_type = "webhook_endpoint";
      change.resource_id = endpoint;
      change.before = json{{"disabled", false}};
      change.after = json{{"disabled", true}, {"disabled_reason", reason}};
      return true;
    },
    [self, log, endpoint](caf::expected<bool> done) {
      if (done) {
        log->warn(protocol::event("webhook endpoint disabled").add("endpoint", endpoint).str());
        round(self);
      } else if (protocol::to_errc(done.error()) != protocol::errc::conflict) {
        log->error(protocol::event("cannot disable webhook endpoint")
                     .add("endpoint", endpoint)
                     .add("error", self->system().render(done.error()))
                     .str());
      }
    });
}

void flush(dispatcher_pointer self) {
  auto& st = self->state;
  st.flush_armed = false;
  auto results = std::move(st.results);
  st.results.clear();
  st.buffered = 0;
  for (auto& [tenant, list] : results) {
    const auto count = static_cast<std::uint32_t>(list.size());
    auto instance = st.instance;
    const auto disable_after = st.config->options.disable_after;
    auto shared = std::make_shared<std::vector<storage::attempt_result>>(std::move(list));
    kit::read_tx<std::vector<storage::endpoint_to_disable>>(
      self, tenant,
      [shared, instance, disable_after](storage::pg_transaction& tx) {
        storage::webhook_repository repo{tx};
        return repo.record(*shared, instance, disable_after);
      },
      [self, tenant = tenant, count](caf::expected<std::vector<storage::endpoint_to_disable>> r) {
        auto& s = self->state;
        s.in_flight -= std::min(s.in_flight, count);
        if (!r) {
          // The deliveries stay leased: they are claimed and sent again when it runs out.
          s.config->log->error(protocol::event("cannot record webhook attempts")
                                 .add("count", static_cast<std::uint64_t>(count))
                                 .add("error", self->system().render(r.error()))
                                 .str());
        } else {
          for (const auto& d : *r) {
            disable(self, tenant, d.endpoint_id, d.reason);
          }
        }
        round(self);
      });
  }
}

void claim_tenants(dispatcher_pointer self, const std::vector<std::string>& tenants,
                   std::uint32_t capacity, bool recover) {
  auto& st = self->state;
  struct progress {
    std::size_t left = 0;
    bool full = false;
  };
  auto p = std::make_shared<progress>();
  p->left = tenants.size();
  const auto per_tenant = std::max<std::uint32_t>(
    1, std::min<std::uint32_t>(st.config->options.claim_batch,
                               capacity / static_cast<std::uint32_t>(tenants.size())));
  for (const auto& tenant : tenants) {
    const auto lease_s = st.config->lease_s;
    auto instance = st.instance;
    kit::read_tx<std::vector<storage::claimed_delivery>>(
      self, tenant,
      [per_tenant, lease_s, instance, recover](storage::pg_transaction& tx) {
        storage::webhook_repository repo{tx};
        return repo.claim(per_tenant, lease_s, instance, recover);
      },
      [self, p, per_tenant](caf::expected<std::vector<storage::claimed_delivery>> claimed) {
        auto& s = self->state;
        if (!claimed) {
          s.config->log->error(protocol::event("cannot claim webhook deliveries")
                                 .add("error", self->system().render(claimed.error()))
                                 .str());
        } else {
          p->full = p->full || claimed->size() >= per_tenant;
          hand_over(self, std::move(*claimed));
        }
        if (--p->left == 0) {
          s.claiming = false;
          if (p->full || s.again) {
            round(self);
          }
        }
      });
  }
}

// Refreshes this dispatcher's row in webhook_dispatchers (storage::dispatcher_alive).
void alive(dispatcher_pointer self) {
  auto instance = self->state.instance;
  kit::read_tx<bool>(
    self, std::string{},
    [instance](storage::pg_transaction& tx) -> caf::expected<bool> {
      if (auto err = storage::dispatcher_alive(tx, instance)) {
        return err;
      }
      return true;
    },
    [self](caf::expected<bool> done) {
      if (!done) {
        self->state.config->log->warn(protocol::event("cannot refresh the webhook dispatcher's row")
                                        .add("error", self->system().render(done.error()))
                                        .str());
      }
    });
}

// One claim round: which tenants have due deliveries (with `recover`: every queued tenant),
// then a claim in each.
void round(dispatcher_pointer self) {
  auto& st = self->state;
  if (st.claiming) {
    st.again = true;
    return;
  }
  const auto& options = st.config->options;
  if (st.in_flight + options.claim_batch / 4 > options.max_in_flight) {
    return; // recorded results start the next round
  }
  const auto capacity = options.max_in_flight - st.in_flight;
  st.claiming = true;
  st.again = false;
  const bool all = st.recover;
  st.recover = false;
  kit::read_tx<std::vector<std::string>>(
    self, std::string{},
    [all](storage::pg_transaction& tx) { return storage::due_tenants(tx, 64, all); },
    [self, capacity, all](caf::expected<std::vector<std::string>> tenants) {
      auto& s = self->state;
      if (!tenants || tenants->empty()) {
        if (!tenants) {
          s.recover = s.recover || all; // the recovery scan must still run
        }
        s.claiming = false;
        if (s.again && tenants) {
          round(self);
        }
        return;
      }
      claim_tenants(self, *tenants, capacity, all);
    });
}

caf::behavior webhook_dispatcher(dispatcher_pointer self, webhook_dispatcher_options options) {
  auto& st = self->state;
  st.config = std::make_shared<shared_config>();
  st.config->options = options;
  st.config->lease_s
    = std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count() + 60;
  st.config->log = protocol::make_logger("webhooks");
  http_client_options client;
  client.timeout = options.timeout;
  client.allow_private_targets = options.allow_private_targets;
  client.threads = options.client_threads;
  st.config->client = std::make_shared<http_client>(client);
  st.instance = options.node + "/" + protocol::crypto::hex(protocol::crypto::random_bytes(6));
  self->system().registry().put(webhook_dispatcher_key, self);
  self->attach_functor([config = st.config] { config->client->stop(); });
  self->send(self, protocol::tick_atom_v);
  return {
    [self](protocol::tick_atom) {
      // Every 5 s (at the default poll interval): this dispatcher is alive, and the next round
      // takes back what dispatchers that are not hold.
      constexpr std::uint64_t every = 20;
      auto& s = self->state;
      if (s.ticks++ % every == 0) {
        alive(self);
        s.recover = s.ticks > 1 || s.recover;
      }
      round(self);
      self->delayed_send(self, s.config->options.poll_interval, protocol::tick_atom_v);
    },
    [self](protocol::poke_atom) { round(self); },
    [self](protocol::attempted_atom, const std::string& tenant, storage::attempt_result& r) {
      auto& s = self->state;
      if (auto& m = s.config->options.metrics) {
        m->count_webhook_attempt(r.status == "pending" ? "retried" : r.status);
      }
      s.results[tenant].push_back(std::move(r));
      constexpr std::size_t batch = 256;
      constexpr std::chrono::milliseconds linger{5};
      if (++s.buffered >= batch) {
        flush(self);
      } else if (!s.flush_armed) {
        s.flush_armed = true;
        self->delayed_send(self, linger, protocol::flush_atom_v);
      }
    },
    [self](protocol::attempted_atom, bool) {
      // A delivery dropped unsent from an endpoint's queue: its lease will run out.
      auto& s = self->state;
      s.in_flight -= std::min<std::uint32_t>(s.in_flight, 1);
    },
    [self](protocol::flush_atom) { flush(self); },
  };
}

} // namespace

caf::actor spawn_webhook_dispatcher(caf::local_actor* parent, webhook_dispatcher_options options) {
  return parent->spawn(webhook_dispatcher, std::move(options));
}

void poke_webhook_dispatcher(caf::actor_system& system) {
  auto dispatcher = system.registry().get(webhook_dispatcher_key);
  if (dispatcher) {
    caf::anon_send(caf::actor_cast<caf::actor>(dispatcher), protocol::poke_atom_v);
  }
}

} // namespace troupe::actors

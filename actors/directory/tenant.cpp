#include "actors/directory/tenant.hpp"

#include "actors/auth/auth_cache.hpp"
#include "actors/auth/key_ring.hpp"
#include "actors/metrics/metrics_registry.hpp"
#include "protocol/actors.hpp"
#include "protocol/crypto.hpp"
#include "protocol/error.hpp"
#include "protocol/jwt.hpp"
#include "protocol/principal.hpp"
#include "storage/audit.hpp"
#include "storage/auth.hpp"
#include "storage/db.hpp"
#include "storage/idempotency.hpp"
#include "storage/roles.hpp"
#include "storage/usage.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/local_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

namespace troupe::actors {

namespace {

using result_promise = caf::typed_response_promise<protocol::audited_result>;

struct pending {
  protocol::audited_work work;
  result_promise rp;
};

// What one batch's transaction reports back, besides commit or rollback. Written on the
// database thread, read by the tenant actor after the pool's reply (the message orders them).
struct batch_io {
  std::vector<protocol::audited_work> works;
  std::optional<storage::audit_head> head;   // the actor's head; nullopt: load it first
  std::optional<storage::audit_head> loaded; // the head read from the database, if it was
  std::optional<std::size_t> failed;         // the unit whose body failed
  std::vector<std::any> values;
  std::vector<std::string> invalidates; // what the committed units changed (auth caches)
  storage::audit_head after;
  // The actor's keys: read only while the batch runs (the actor changes them only after
  // the reply), plus those this batch fetched.
  std::shared_ptr<const storage::audit_key_cache> known;
  storage::audit_key_cache fetched;
};

struct tenant_state {
  static inline const char* name = "tenant";
  protocol::tenant_record record;
  tenant_options options;
  std::optional<storage::audit_head> head; // nullopt: unknown, the next batch loads it
  std::deque<pending> queue;
  bool busy = false;
  bool retiring = false;
  std::size_t next_limit = 0; // 0: options.max_batch
  int conflicts = 0;
  // Data keys by subject, as committed: saves their lookup in most transactions. A key
  // destroyed meanwhile (erasure) only means new data sealed under it reads "[erased]".
  std::shared_ptr<storage::audit_key_cache> keys = std::make_shared<storage::audit_key_cache>();
  // Authentication (docs/auth.md): verified tokens, sessions, users and API keys, the login
  // throttle, and the session actors of refresh-token families in use.
  std::optional<auth_cache> auth;
  std::optional<login_throttle> throttle;
  std::unordered_map<std::string, caf::actor> sessions;
  // Custom roles (docs/rbac.md): loaded with the first user, dropped on any role change.
  std::optional<protocol::role_catalog> roles;
  // Rate limits (docs/rate-limits.md): the tenant's limits (its overrides on the defaults),
  // its buckets, and the denials not yet audited, by bucket key.
  rate_limit principal_limit;
  rate_limit tenant_limit;
  rate_limit anonymous_limit;
  rate_limit inbound_limit;
  std::optional<rate_limiter> limiter;
  struct denial_log {
    caf::actor_clock::time_point last_audit;
    std::uint64_t suppressed = 0;
  };
  std::unordered_map<std::string, denial_log> denials;
  // Monthly request counts (docs/rate-limits.md "Quotas").
  std::uint64_t quota = 0; // 0: none
  struct usage_state {
    std::string period;          // "YYYY-MM" (UTC)
    std::int64_t period_end = 0; // Unix seconds when it ends
    std::uint64_t counted = 0;   // the period's total as PostgreSQL last answered it
    std::uint64_t pending = 0;   // counted here since, not written yet
    bool flushing = false;
    bool scheduled = false;
  } usage;
  // Idempotency keys in flight here ("principal\nkey" → fingerprint): a second request with
  // one is answered at once; kept responses live in PostgreSQL (docs/idempotency.md).
  std::unordered_map<std::string, std::string> claims;
  caf::actor_clock::time_point last_purge;
};

// More subjects than this and the cache starts over (it only saves a statement).
constexpr std::size_t max_cached_keys = 4096;

using tenant_pointer = protocol::tenant_actor::stateful_pointer<tenant_state>;

storage::db_pool_actor pool_of(tenant_pointer self) {
  return self->system().registry().get<storage::db_pool_actor>(protocol::db_pool_key);
}

// The transaction of one batch: bodies in order, then their entries in one append.
storage::db_work batch_work(const std::string& tenant_id, std::shared_ptr<batch_io> io,
                            std::shared_ptr<const storage::audit_secrets> secrets) {
  return {tenant_id, [io, secrets](storage::pg_transaction& tx) -> caf::expected<std::any> {
            // The pool may run this twice (a dead session found by the first statement).
            io->loaded.reset();
            io->failed.reset();
            io->values.clear();
            io->invalidates.clear();
            io->fetched.clear();
            storage::audit_repository repo{tx, *secrets};
            storage::audit_head head;
            if (io->head) {
              head = *io->head;
            } else {
              auto loaded = repo.head();
              if (!loaded) {
                return std::move(loaded.error());
              }
              head = *loaded;
              io->loaded = head;
            }
            std::vector<storage::audit_draft> drafts;
            std::vector<std::function<caf::error(storage::pg_transaction&)>> afterwards;
            drafts.reserve(io->works.size());
            for (std::size_t i = 0; i < io->works.size(); ++i) {
              auto& work = io->works[i];
              protocol::audit_change change;
              change.action = work.action;
              auto value = work.body(tx, change);
              if (!value) {
                io->failed = i;
                return std::move(value.error());
              }
              io->values.push_back(std::move(*value));
              io->invalidates.insert(io->invalidates.end(), change.invalidates.begin(),
                                     change.invalidates.end());
              afterwards.push_back(std::move(change.after_append));
              auto origin = work.origin;
              if (!change.actor_type.empty()) {
                origin.actor_type = change.actor_type;
                origin.actor_id = change.actor_id;
              }
              drafts.push_back({std::move(origin), std::move(change)});
            }
            // Without later steps the INSERT goes out with COMMIT: one round trip.
            const bool finish = std::none_of(afterwards.begin(), afterwards.end(),
                                             [](const auto& f) { return static_cast<bool>(f); });
            auto after = repo.append(head, drafts, io->known.get(), &io->fetched, finish);
            if (!after) {
              return std::move(after.error());
            }
            for (std::size_t i = 0; i < afterwards.size(); ++i) {
              if (afterwards[i]) {
                if (auto err = afterwards[i](tx)) {
                  io->failed = i;
                  return err;
                }
              }
            }
            io->after = std::move(*after);
            return std::any{};
          }};
}

void flush(tenant_pointer self);

void put_back(tenant_pointer self, std::vector<pending>& batch, std::size_t from) {
  auto& queue = self->state.queue;
  for (std::size_t i = batch.size(); i > from; --i) {
    queue.push_front(std::move(batch[i - 1]));
  }
}

void finish_if_retired(tenant_pointer self) {
  const auto& usage = self->state.usage;
  if (self->state.retiring && !self->state.busy && self->state.queue.empty() && !usage.flushing
      && usage.pending == 0) {
    self->quit();
  }
}

void flush(tenant_pointer self) {
  auto& st = self->state;
  if (st.busy || st.queue.empty()) {
    finish_if_retired(self);
    return;
  }
  auto pool = pool_of(self);
  if (!pool || !st.options.audit) {
    auto err = caf::make_error(protocol::errc::service_unavailable,
                               pool ? "audit keys missing" : "database pool away");
    while (!st.queue.empty()) {
      st.queue.front().rp.deliver(err);
      st.queue.pop_front();
    }
    finish_if_retired(self);
    return;
  }
  const auto limit = st.next_limit == 0 ? st.options.max_batch : st.next_limit;
  st.next_limit = 0;
  auto batch = std::make_shared<std::vector<pending>>();
  auto io = std::make_shared<batch_io>();
  while (!st.queue.empty() && batch->size() < limit) {
    io->works.push_back(st.queue.front().work);
    batch->push_back(std::move(st.queue.front()));
    st.queue.pop_front();
  }
  io->head = st.head;
  io->known = st.keys;
  st.busy = true;
  self
    ->request(pool, st.options.db_timeout, protocol::run_atom_v,
              batch_work(st.record.id, io, st.options.audit))
    .then(
      [self, batch, io](storage::db_reply&) {
        auto& s = self->state;
        s.busy = false;
        s.conflicts = 0;
        const auto first_seq = io->after.seq - batch->size() + 1;
        s.head = io->after;
        if (s.keys->size() + io->fetched.size() > max_cached_keys) {
          s.keys->clear();
        }
        s.keys->merge(io->fetched);
        // Before any caller hears of the commit: its next request must see the change.
        for (const auto& what : io->invalidates) {
          s.auth->invalidate(what);
          if (what == "roles") {
            s.roles.reset();
          }
        }
        if (s.options.metrics) {
          s.options.metrics->count_audit_entries(batch->size());
        }
        for (std::size_t i = 0; i < batch->size(); ++i) {
          (*batch)[i].rp.deliver(protocol::audited_result{std::move(io->values[i]), first_seq + i});
        }
        flush(self);
      },
      [self, batch, io](caf::error& err) {
        auto& s = self->state;
        s.busy = false;
        if (io->failed) {
          // A unit's own failure: nothing of the batch committed. The head is still valid.
          if (io->loaded) {
            s.head = io->loaded;
          }
          const auto k = *io->failed;
          if (k == 0) {
            (*batch)[0].rp.deliver(err);
            put_back(self, *batch, 1);
          } else {
            // Its failure may have depended on the units before it, which did not commit:
            // run those first, then it alone (so its answer is based on committed state).
            put_back(self, *batch, 0);
            s.next_limit = k;
          }
        } else if (protocol::to_errc(err) == protocol::errc::conflict && s.conflicts < 3) {
          // Another writer appended to this chain (a retiring predecessor): reload, retry.
          ++s.conflicts;
          s.head.reset();
          put_back(self, *batch, 0);
        } else {
          // The database failed (or COMMIT's outcome is unknown): tell every unit, and
          // reload the head before the next batch.
          s.conflicts = 0;
          s.head.reset();
          for (auto& p : *batch) {
            p.rp.deliver(err);
          }
        }
        flush(self);
      });
}

// -- authentication (docs/auth.md) -----------------------------------------------------------

using auth_promise = caf::typed_response_promise<protocol::authenticated>;

protocol::authenticated refused(protocol::authenticated out, protocol::errc code,
                                std::string detail) {
  out.who = protocol::principal{};
  out.who.refused = static_cast<std::uint8_t>(code);
  out.who.detail = std::move(detail);
  return out;
}

user_state user_state_of(const storage::user_row& row, const protocol::role_catalog& roles) {
  return {storage::user_json(row), protocol::effective_permissions(row.roles, roles)};
}

// The tenant's custom roles (the effective permissions of users depend on them).
caf::expected<protocol::role_catalog> load_roles(storage::pg_transaction& tx) {
  storage::role_repository repo{tx};
  return repo.catalog();
}

// The catalog to compute permissions with after a load: the one loaded with it (kept if no
// invalidation came in between), else the cached one; nullptr if there is none (the caller
// starts over, and the next load brings the roles).
const protocol::role_catalog* catalog_after_load(tenant_pointer self,
                                                 std::optional<protocol::role_catalog>& loaded,
                                                 std::uint64_t epoch) {
  auto& st = self->state;
  if (loaded) {
    if (epoch == st.auth->epoch()) {
      st.roles = std::move(loaded);
      return &*st.roles;
    }
    return &*loaded;
  }
  return st.roles ? &*st.roles : nullptr;
}

// The principal of a verified access token, once its session and user are known.
protocol::authenticated as_user(protocol::authenticated out, const token_claims& claims,
                                const session_state* session, const user_state* user) {
  if (session == nullptr || session->revoked) {
    return refused(std::move(out), protocol::errc::token_revoked, "the session was revoked");
  }
  if (user == nullptr || session->user_id != claims.sub) {
    return refused(std::move(out), protocol::errc::token_revoked, "the user no longer exists");
  }
  out.who.type = "user";
  out.who.id = claims.sub;
  out.who.user_id = claims.sub;
  out.who.session_id = claims.sid;
  out.who.permissions = user->permissions;
  out.who.profile = user->profile;
  return out;
}

// The principal of an API key: its permissions, narrowed to its creator's current ones.
protocol::authenticated as_key(protocol::authenticated out, const api_key_state& key,
                               const user_state* creator, std::int64_t now) {
  if (key.revoked) {
    return refused(std::move(out), protocol::errc::token_revoked, "the API key was revoked");
  }
  if (key.expires != 0 && key.expires <= now) {
    return refused(std::move(out), protocol::errc::token_expired, "the API key expired");
  }
  out.who.type = "api_key";
  out.who.id = key.id;
  out.who.user_id = key.created_by;
  // A key made with the platform admin token has no creator to narrow it; a key whose
  // creator is gone has nothing left.
  const bool by_admin = key.created_by.empty();
  for (const auto& p : protocol::permission_catalogue()) {
    if (protocol::permits(key.permissions, p)
        && (by_admin || (creator != nullptr && protocol::permits(creator->permissions, p)))) {
      out.who.permissions.push_back(p);
    }
  }
  return out;
}

// Runs `body` as one unit of work of the tenant on the pool (outside the audit chain) and hands
// its value (or error) to `then`, on this actor.
template <class T, class Body, class Then>
void on_pool(tenant_pointer self, Body body, Then then) {
  auto pool = pool_of(self);
  if (!pool) {
    then(caf::expected<T>{caf::make_error(protocol::errc::service_unavailable, "pool away")});
    return;
  }
  storage::db_work work{self->state.record.id,
                        [body](storage::pg_transaction& tx) -> caf::expected<std::any> {
                          caf::expected<T> value = body(tx);
                          if (!value) {
                            return std::move(value.error());
                          }
                          return std::any{std::move(*value)};
                        }};
  self->request(pool, self->state.options.db_timeout, protocol::run_atom_v, std::move(work))
    .then(
      [then](storage::db_reply& reply) mutable {
        then(caf::expected<T>{std::any_cast<T>(std::move(reply.value))});
      },
      [then](caf::error& err) mutable { then(caf::expected<T>{std::move(err)}); });
}

struct session_and_user {
  std::optional<storage::session_row> session;
  std::optional<storage::user_row> user;
  std::optional<protocol::role_catalog> roles; // loaded when the actor has none
};

void authenticate_jwt(tenant_pointer self, const std::string& token,
                      const protocol::auth_callback& done) {
  auto& st = self->state;
  protocol::authenticated out{st.record, {}, {}};
  const auto digest = protocol::crypto::sha256(token);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  token_claims claims;
  if (const auto* known = st.auth->token(digest)) {
    claims = *known;
  } else {
    auto ring = st.options.keys ? st.options.keys->current() : nullptr;
    if (!ring) {
      done(refused(std::move(out), protocol::errc::unauthenticated, "no signing keys"));
      return;
    }
    if (ring->public_keys.empty()) {
      // Right after start the keys may still be loading: wait for them (bounded), then verify.
      auto keys
        = self->system().registry().get<protocol::key_manager_actor>(protocol::key_manager_key);
      if (!keys) {
        done(caf::make_error(protocol::errc::service_unavailable, "signing keys not loaded"));
        return;
      }
      self->request(keys, std::chrono::seconds{5}, caf::get_atom_v)
        .then([self, token, done](const std::string&) { authenticate_jwt(self, token, done); },
              [done](caf::error&) {
                done(
                  caf::make_error(protocol::errc::service_unavailable, "signing keys not loaded"));
              });
      return;
    }
    auto verified = protocol::jwt::verify(
      token,
      [&ring](std::string_view kid) -> std::optional<std::string> {
        auto i = ring->public_keys.find(std::string{kid});
        return i == ring->public_keys.end() ? std::nullopt : std::optional<std::string>{i->second};
      },
      st.options.issuer, now);
    if (verified.error) {
      if (*verified.error == protocol::jwt::failure::expired) {
        done(refused(std::move(out), protocol::errc::token_expired, "the access token expired"));
        return;
      }
      done(refused(std::move(out), protocol::errc::unauthenticated,
                   std::string{"invalid access token: "} + to_string(*verified.error)));
      return;
    }
    auto parsed = nlohmann::json::parse(verified.claims, nullptr, false);
    auto text = [&parsed](const char* name) {
      auto i = parsed.find(name);
      return i != parsed.end() && i->is_string() ? i->get<std::string>() : std::string{};
    };
    claims.sub = text("sub");
    claims.sid = text("sid");
    claims.tid = text("tid");
    if (auto exp = parsed.find("exp"); exp != parsed.end() && exp->is_number_integer()) {
      claims.exp = exp->get<std::int64_t>();
    }
    if (claims.sub.empty() || claims.sid.empty() || claims.tid.empty()) {
      done(refused(std::move(out), protocol::errc::unauthenticated,
                   "invalid access token: claims missing"));
      return;
    }
    if (claims.tid != st.record.id) {
      done(caf::make_error(protocol::errc::tenant_mismatch));
      return;
    }
    st.auth->put_token(digest, claims);
  }
  if (claims.exp <= now) {
    done(refused(std::move(out), protocol::errc::token_expired, "the access token expired"));
    return;
  }
  const auto* session = st.auth->session(claims.sid);
  const auto* user = st.auth->user(claims.sub);
  if (session != nullptr && (user != nullptr || session->revoked)) {
    done(as_user(std::move(out), claims, session, user));
    return;
  }
  const auto epoch = st.auth->epoch();
  on_pool<session_and_user>(
    self,
    [sid = claims.sid, sub = claims.sub,
     need_roles = !st.roles](storage::pg_transaction& tx) -> caf::expected<session_and_user> {
      storage::auth_repository repo{tx};
      session_and_user found;
      auto s = repo.session(sid);
      if (!s) {
        return std::move(s.error());
      }
      found.session = std::move(*s);
      auto u = repo.user_by_id(sub);
      if (!u) {
        return std::move(u.error());
      }
      found.user = std::move(*u);
      if (need_roles) {
        auto roles = load_roles(tx);
        if (!roles) {
          return std::move(roles.error());
        }
        found.roles = std::move(*roles);
      }
      return found;
    },
    [self, done, out, claims, epoch, token](caf::expected<session_and_user> loaded) mutable {
      if (!loaded) {
        done(std::move(loaded.error()));
        return;
      }
      const auto* roles = catalog_after_load(self, loaded->roles, epoch);
      if (roles == nullptr) {
        authenticate_jwt(self, token, done); // the roles changed meanwhile: load again
        return;
      }
      auto& cache = *self->state.auth;
      // A session that does not exist is as good as revoked (remembered as such).
      session_state s{claims.sub, true};
      if (loaded->session) {
        s = {loaded->session->user_id, loaded->session->revoked};
      }
      cache.put_session(claims.sid, s, epoch);
      std::optional<user_state> u;
      if (loaded->user) {
        u = user_state_of(*loaded->user, *roles);
        cache.put_user(claims.sub, *u, epoch);
      }
      done(as_user(std::move(out), claims, &s, u ? &*u : nullptr));
    });
}

struct key_and_creator {
  std::optional<std::string> tenant;
  std::optional<storage::api_key_row> key;
  std::optional<storage::user_row> creator;
  std::optional<protocol::role_catalog> roles; // loaded when the actor has none
};

void authenticate_key(tenant_pointer self, const std::string& token,
                      const protocol::auth_callback& done) {
  auto& st = self->state;
  protocol::authenticated out{st.record, {}, {}};
  const auto digest = protocol::crypto::sha256(token);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (const auto* key = st.auth->key(digest)) {
    if (key->created_by.empty()) {
      done(as_key(std::move(out), *key, nullptr, now));
      return;
    }
    if (const auto* creator = st.auth->user(key->created_by)) {
      done(as_key(std::move(out), *key, creator, now));
      return;
    }
  }
  const auto epoch = st.auth->epoch();
  on_pool<key_and_creator>(
    self,
    [digest,
     need_roles = !st.roles](storage::pg_transaction& tx) -> caf::expected<key_and_creator> {
      storage::auth_repository repo{tx};
      key_and_creator found;
      if (need_roles) {
        auto roles = load_roles(tx);
        if (!roles) {
          return std::move(roles.error());
        }
        found.roles = std::move(*roles);
      }
      auto tenant = repo.api_key_tenant(digest);
      if (!tenant) {
        return std::move(tenant.error());
      }
      found.tenant = std::move(*tenant);
      auto key = repo.api_key_by_hash(digest);
      if (!key) {
        return std::move(key.error());
      }
      found.key = std::move(*key);
      if (found.key && !found.key->created_by.empty()) {
        auto creator = repo.user_by_id(found.key->created_by);
        if (!creator) {
          return std::move(creator.error());
        }
        found.creator = std::move(*creator);
      }
      return found;
    },
    [self, done, out, digest, epoch, now, token](caf::expected<key_and_creator> loaded) mutable {
      if (!loaded) {
        done(std::move(loaded.error()));
        return;
      }
      const auto* roles = catalog_after_load(self, loaded->roles, epoch);
      if (roles == nullptr) {
        authenticate_key(self, token, done); // the roles changed meanwhile: load again
        return;
      }
      if (loaded->tenant && *loaded->tenant != self->state.record.id) {
        done(caf::make_error(protocol::errc::tenant_mismatch));
        return;
      }
      if (!loaded->key) {
        done(refused(std::move(out), protocol::errc::unauthenticated, "unknown API key"));
        return;
      }
      auto& cache = *self->state.auth;
      const auto& row = *loaded->key;
      api_key_state key{row.id, row.created_by, row.permissions, row.revoked, row.expires_unix};
      cache.put_key(digest, key, epoch);
      std::optional<user_state> creator;
      if (loaded->creator) {
        creator = user_state_of(*loaded->creator, *roles);
        cache.put_user(row.created_by, *creator, epoch);
      }
      done(as_key(std::move(out), key, creator ? &*creator : nullptr, now));
    });
}

// The tenant's limits: its `limits` object ({"principal":[n,s],...}) over the defaults.
void load_limits(tenant_pointer self) {
  auto& st = self->state;
  st.principal_limit = st.options.principal_limit;
  st.tenant_limit = st.options.tenant_limit;
  st.anonymous_limit = st.options.anonymous_limit;
  st.inbound_limit = st.options.inbound_limit;
  auto limits
    = nlohmann::json::parse(st.record.limits.empty() ? "{}" : st.record.limits, nullptr, false);
  if (!limits.is_object()) {
    return;
  }
  auto read = [&limits](const char* name, rate_limit& into) {
    auto i = limits.find(name);
    if (i != limits.end() && i->is_array() && i->size() == 2 && (*i)[0].is_number_unsigned()
        && (*i)[1].is_number_unsigned() && (*i)[1].get<std::uint32_t>() > 0) {
      into = {(*i)[0].get<std::uint32_t>(), (*i)[1].get<std::uint32_t>()};
    }
  };
  read("principal", st.principal_limit);
  read("tenant", st.tenant_limit);
  read("anonymous", st.anonymous_limit);
  read("inbound", st.inbound_limit);
  st.quota = st.options.quota;
  if (auto q = limits.find("requests_per_month"); q != limits.end() && q->is_number_unsigned()) {
    st.quota = q->get<std::uint64_t>();
  }
}

// Starts the period of `now` (Unix seconds) if the current one has ended.
void roll_period(tenant_state::usage_state& u, std::int64_t now) {
  if (now < u.period_end) {
    return;
  }
  const auto t = static_cast<std::time_t>(now);
  std::tm g{};
  gmtime_r(&t, &g);
  char name[16];
  std::strftime(name, sizeof name, "%Y-%m", &g);
  std::tm next{};
  next.tm_year = g.tm_year + (g.tm_mon == 11 ? 1 : 0);
  next.tm_mon = (g.tm_mon + 1) % 12;
  next.tm_mday = 1;
  u.period_end = static_cast<std::int64_t>(timegm(&next));
  if (u.period != name) {
    u.period = name;
    u.counted = 0; // the counts of a month's last second may land in the next one
  }
}

void flush_usage(tenant_pointer self);

void schedule_flush(tenant_pointer self) {
  auto& u = self->state.usage;
  if (!u.scheduled) {
    u.scheduled = true;
    self->delayed_send(self, std::chrono::seconds{1}, protocol::sweep_atom_v);
  }
}

// Writes the counts of the last second (one statement; a crash loses at most a second of
// counts) and learns the period's total, every node's counts included.
void flush_usage(tenant_pointer self) {
  auto& u = self->state.usage;
  u.scheduled = false;
  if (u.flushing || u.pending == 0) {
    finish_if_retired(self);
    return;
  }
  auto pool = pool_of(self);
  if (!pool) {
    schedule_flush(self);
    return;
  }
  const auto delta = u.pending;
  u.pending = 0;
  u.flushing = true;
  storage::db_work work{
    self->state.record.id,
    [period = u.period, delta](storage::pg_transaction& tx) -> caf::expected<std::any> {
      storage::usage_repository repo{tx};
      auto total = repo.add(period, delta);
      if (!total) {
        return std::move(total.error());
      }
      return std::any{*total};
    }};
  self->request(pool, self->state.options.db_timeout, protocol::run_atom_v, std::move(work))
    .then(
      [self](storage::db_reply& reply) {
        auto& s = self->state.usage;
        s.flushing = false;
        s.counted = std::any_cast<std::uint64_t>(reply.value);
        if (s.pending > 0) {
          schedule_flush(self);
        }
        finish_if_retired(self);
      },
      [self, delta](caf::error&) {
        auto& s = self->state.usage;
        s.flushing = false;
        s.pending += delta; // written with the next batch
        schedule_flush(self);
        finish_if_retired(self);
      });
}

// Runs one idempotency statement for the tenant and hands its value to `then`.
template <class T, class Body, class Then>
void idempotency_work(tenant_pointer self, Body body, Then then) {
  on_pool<T>(
    self,
    [body](storage::pg_transaction& tx) {
      storage::idempotency_repository repo{tx};
      return caf::expected<T>{body(repo)};
    },
    std::move(then));
}

// Expired records go at most once a minute, while the tenant is busy.
void purge_idempotency(tenant_pointer self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (now - st.last_purge < std::chrono::minutes{1}) {
    return;
  }
  st.last_purge = now;
  idempotency_work<std::uint64_t>(
    self, [](storage::idempotency_repository& repo) { return repo.purge(); },
    [](caf::expected<std::uint64_t>) {});
}

caf::result<protocol::idempotency_answer> idempotency(tenant_pointer self,
                                                      protocol::idempotency_call& call) {
  auto& st = self->state;
  const auto id = call.principal + '\n' + call.key;
  const auto lease = st.options.idempotency_lease_s;
  const auto ttl = st.options.idempotency_ttl_s;
  if (call.op == "claim") {
    if (auto i = st.claims.find(id); i != st.claims.end()) {
      return protocol::idempotency_answer{
        protocol::crypto::constant_time_equal(i->second, call.fingerprint) ? "in_flight"
                                                                           : "mismatch",
        0, ""};
    }
  }
  // Only now: a promise made for this request must be the one that answers it.
  auto rp = self->make_response_promise<protocol::idempotency_answer>();
  if (call.op == "claim") {
    st.claims.emplace(id, call.fingerprint); // before the read: concurrent ones wait for it
    purge_idempotency(self);
    idempotency_work<storage::idempotency_claim>(
      self,
      [call, lease, ttl](storage::idempotency_repository& repo) {
        return repo.claim(call.principal, call.key, call.fingerprint, lease, ttl);
      },
      [self, rp, id](caf::expected<storage::idempotency_claim> claim) mutable {
        if (!claim) {
          self->state.claims.erase(id);
          rp.deliver(std::move(claim.error()));
          return;
        }
        using outcome = storage::idempotency_claim::outcome;
        if (claim->result != outcome::claimed) {
          self->state.claims.erase(id);
        }
        const char* names[] = {"claimed", "replay", "in_flight", "mismatch"};
        rp.deliver(protocol::idempotency_answer{names[static_cast<int>(claim->result)],
                                                claim->status, std::move(claim->response)});
      });
    return rp;
  }
  const bool complete = call.op == "complete";
  idempotency_work<bool>(
    self,
    [call, complete, ttl](storage::idempotency_repository& repo) -> caf::expected<bool> {
      auto err = complete ? repo.complete(call.principal, call.key, call.status, call.response, ttl)
                          : repo.release(call.principal, call.key);
      if (err) {
        return err;
      }
      return true;
    },
    [self, rp, id](caf::expected<bool> done) mutable {
      self->state.claims.erase(id);
      if (!done) {
        rp.deliver(std::move(done.error()));
        return;
      }
      rp.deliver(protocol::idempotency_answer{"done", 0, ""});
    });
  return rp;
}

// Counts a request that passed the rate limits, or refuses it when the quota is spent.
void count_request(tenant_pointer self, protocol::authenticated& out) {
  auto& st = self->state;
  auto& u = st.usage;
  roll_period(u, static_cast<std::int64_t>(std::time(nullptr)));
  if (st.quota > 0 && u.counted + u.pending >= st.quota) {
    out.rate.quota_exceeded = true;
    return;
  }
  ++u.pending;
  schedule_flush(self);
}

// Audits a refused request as a security event, at most once a minute per bucket key: the
// entry of a minute counts the refusals it stands for (docs/rate-limits.md "Audit").
void audit_denial(tenant_pointer self, const std::string& key, const protocol::principal& who,
                  const protocol::credential& c, const rate_state& state) {
  auto& st = self->state;
  const auto now = self->clock().now();
  auto& log = st.denials[key];
  ++log.suppressed;
  if (log.last_audit != caf::actor_clock::time_point{}
      && now - log.last_audit < std::chrono::minutes{1}) {
    return;
  }
  if (st.denials.size() > 10000) {
    st.denials.clear(); // a flood of keys: start over (each key's first denial is audited)
  }
  const auto count = log.suppressed;
  log = {now, 0};
  protocol::audited_work work;
  work.origin.actor_type = who.type;
  work.origin.actor_id = who.id;
  work.origin.ip = c.ip;
  work.action = "rate_limit.exceeded";
  work.body
    = [bucket = state.bucket, limit = state.limit, window = state.window_s,
       count](storage::pg_transaction&, protocol::audit_change& change) -> caf::expected<std::any> {
    change.outcome = "denied";
    change.resource_type = "rate_limit";
    change.resource_id = bucket;
    change.after = nlohmann::json{{"limit", limit}, {"window_s", window}, {"refused", count}};
    return std::any{};
  };
  caf::anon_send(caf::actor_cast<protocol::tenant_actor>(self), protocol::run_atom_v,
                 std::move(work));
}

// Spends the request from the principal's (or the client address's) bucket and the tenant's.
void limit(tenant_pointer self, protocol::authenticated& out, const protocol::credential& c) {
  auto& st = self->state;
  if (out.who.type == "admin") {
    return; // the operator's token is not limited (docs/rate-limits.md)
  }
#ifdef TROUPE_BENCH_UNLIMITED
  // Only in scripts/bench's troupe_bench_unlimited build: no buckets (the quota still
  // counts), to measure what the rate limits cost a request.
  count_request(self, out);
  return;
#endif
  const bool anonymous = out.who.type == "anonymous";
  // An inbound webhook (POST /v1/inbound/{source}) spends from its source's own bucket.
  const bool inbound = anonymous && c.kind == "inbound";
  const auto key = inbound     ? "inbound:" + c.token
                   : anonymous ? "ip:" + c.ip
                               : out.who.type + ":" + out.who.id;
  auto state = st.limiter->acquire(key,
                                   inbound     ? "inbound"
                                   : anonymous ? "anonymous"
                                               : "principal",
                                   inbound     ? st.inbound_limit
                                   : anonymous ? st.anonymous_limit
                                               : st.principal_limit,
                                   st.tenant_limit, self->clock().now());
  out.rate = {state.bucket,  state.limit,   state.window_s, state.remaining,
              state.reset_s, state.allowed, false};
  if (state.allowed) {
    count_request(self, out);
  } else {
    if (st.options.metrics) {
      st.options.metrics->count_rate_limited(state.bucket);
    }
    audit_denial(self, state.bucket == "tenant" ? std::string{"tenant"} : key, out.who, c, state);
  }
}

// Authenticates `c` for this tenant and answers through `done` (at once, or after loading
// what the caches lack).
void authenticate(tenant_pointer self, const protocol::credential& c,
                  const protocol::auth_callback& answer) {
  // Every answer first spends from the rate-limit buckets (on this actor: continuations of
  // loads run here too).
  protocol::auth_callback done{[self, c, answer](caf::expected<protocol::authenticated> r) {
    if (r) {
      limit(self, *r, c);
    }
    answer(std::move(r));
  }};
  auto& st = self->state;
  if (st.record.status == "suspended") {
    done(caf::make_error(protocol::errc::tenant_suspended));
    return;
  }
  if (c.kind == "jwt") {
    authenticate_jwt(self, c.token, done);
    return;
  }
  if (c.kind == "api_key") {
    authenticate_key(self, c.token, done);
    return;
  }
  protocol::authenticated out{st.record, {}, {}};
  if (c.kind == "admin") {
    out.who.type = "admin";
    out.who.permissions = {"*"};
  } else if (!c.kind.empty() && c.kind != "inbound") {
    out = refused(std::move(out), protocol::errc::unauthenticated, "unsupported credential");
  }
  done(std::move(out));
}

// -- session actors ---------------------------------------------------------------------------

struct session_pending {
  protocol::audited_work work;
  result_promise rp;
};

struct session_actor_state {
  static inline const char* name = "session";
  std::deque<session_pending> queue;
  bool busy = false;
  std::uint64_t ticks = 0; // grows with each unit of work; the idle check compares it
};

// One refresh-token family in use: it runs the family's audited work (refresh, logout,
// revocation) through its tenant one unit at a time, in arrival order, so that two
// refreshes with one token are ordered and the second one finds it spent.
caf::behavior session_actor(caf::stateful_actor<session_actor_state>* self,
                            protocol::tenant_actor tenant, caf::timespan idle) {
  self->monitor(tenant);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  auto pump = std::make_shared<std::function<void()>>();
  *pump = [self, tenant, idle, weak = std::weak_ptr<std::function<void()>>(pump)] {
    auto& st = self->state;
    if (st.busy || st.queue.empty()) {
      return;
    }
    st.busy = true;
    auto next = std::move(st.queue.front());
    st.queue.pop_front();
    self->request(tenant, caf::infinite, protocol::run_atom_v, std::move(next.work))
      .then(
        [self, rp = next.rp, weak, idle](protocol::audited_result& result) mutable {
          rp.deliver(std::move(result));
          self->state.busy = false;
          ++self->state.ticks;
          self->delayed_send(self, idle, protocol::sweep_atom_v, self->state.ticks);
          if (auto p = weak.lock()) {
            (*p)();
          }
        },
        [self, rp = next.rp, weak, idle](caf::error& err) mutable {
          rp.deliver(std::move(err));
          self->state.busy = false;
          ++self->state.ticks;
          self->delayed_send(self, idle, protocol::sweep_atom_v, self->state.ticks);
          if (auto p = weak.lock()) {
            (*p)();
          }
        });
  };
  self->delayed_send(self, idle, protocol::sweep_atom_v, std::uint64_t{0});
  return {
    [self, pump](protocol::run_atom, protocol::audited_work& work) {
      auto rp = self->make_response_promise<protocol::audited_result>();
      self->state.queue.push_back({std::move(work), rp});
      (*pump)();
      return rp;
    },
    [self](protocol::sweep_atom, std::uint64_t ticks) {
      auto& st = self->state;
      if (ticks == st.ticks && !st.busy && st.queue.empty()) {
        self->quit();
      }
    },
  };
}

protocol::tenant_actor::behavior_type tenant(tenant_pointer self, protocol::tenant_record record,
                                             tenant_options options) {
  self->state.record = std::move(record);
  self->state.options = std::move(options);
  self->state.auth.emplace(self->state.options.cache_capacity);
  self->state.limiter.emplace();
  load_limits(self);
  self->state.throttle.emplace(self->state.options.max_failures);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& sessions = self->state.sessions;
    for (auto i = sessions.begin(); i != sessions.end(); ++i) {
      if (i->second.address() == msg.source) {
        sessions.erase(i);
        if (self->state.options.metrics) {
          self->state.options.metrics->count_actor("session", -1);
        }
        return;
      }
    }
  });
  return {
    [self](protocol::resolve_atom) -> caf::result<protocol::tenant_record> {
      if (self->state.record.status == "suspended") {
        return caf::make_error(protocol::errc::tenant_suspended);
      }
      return self->state.record;
    },
    [self](protocol::run_atom,
           protocol::audited_work& work) -> caf::result<protocol::audited_result> {
      auto rp = self->make_response_promise<protocol::audited_result>();
      self->state.queue.push_back({std::move(work), rp});
      flush(self);
      return rp;
    },
    [self](protocol::verify_atom) -> caf::result<protocol::audit_verification> {
      auto& st = self->state;
      auto pool = pool_of(self);
      if (!pool || !st.options.audit) {
        return caf::make_error(protocol::errc::service_unavailable, "database pool away");
      }
      auto rp = self->make_response_promise<protocol::audit_verification>();
      const auto known = st.head.value_or(storage::audit_head{});
      storage::db_work work{st.record.id,
                            [known, secrets = st.options.audit](
                              storage::pg_transaction& tx) -> caf::expected<std::any> {
                              storage::audit_repository repo{tx, *secrets};
                              auto result = repo.verify(known);
                              if (!result) {
                                return std::move(result.error());
                              }
                              return std::any{std::move(*result)};
                            }};
      self->request(pool, std::chrono::seconds{60}, protocol::run_atom_v, std::move(work))
        .then(
          [rp](storage::db_reply& reply) mutable {
            rp.deliver(std::any_cast<protocol::audit_verification>(std::move(reply.value)));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](protocol::update_atom, protocol::tenant_record& changed) {
      self->state.record = std::move(changed);
      load_limits(self);
    },
    [self](protocol::retire_atom) {
      self->state.retiring = true;
      flush_usage(self); // the counts go before the actor does
      finish_if_retired(self);
    },
    [self](protocol::sweep_atom) { flush_usage(self); },
    [self](protocol::idempotency_atom, protocol::idempotency_call& call)
      -> caf::result<protocol::idempotency_answer> { return idempotency(self, call); },
    [self](protocol::usage_atom) -> caf::result<std::string> {
      auto& st = self->state;
      roll_period(st.usage, static_cast<std::int64_t>(std::time(nullptr)));
      auto pool = pool_of(self);
      if (!pool) {
        return caf::make_error(protocol::errc::service_unavailable, "database pool away");
      }
      auto rp = self->make_response_promise<std::string>();
      const auto period = st.usage.period;
      const auto pending = st.usage.pending;
      const auto quota = st.quota;
      storage::db_work work{st.record.id,
                            [period](storage::pg_transaction& tx) -> caf::expected<std::any> {
                              storage::usage_repository repo{tx};
                              auto total = repo.add(period, 0);
                              if (!total) {
                                return std::move(total.error());
                              }
                              auto bytes = repo.storage_bytes();
                              if (!bytes) {
                                return std::move(bytes.error());
                              }
                              return std::any{std::make_pair(*total, *bytes)};
                            }};
      self->request(pool, st.options.db_timeout, protocol::run_atom_v, std::move(work))
        .then(
          [rp, period, pending, quota](storage::db_reply& reply) mutable {
            auto [total, bytes]
              = std::any_cast<std::pair<std::uint64_t, std::uint64_t>>(reply.value);
            rp.deliver(nlohmann::json{
              {"period", period},
              {"requests", total + pending},
              {"quota", quota},
              {"storage_bytes",
               bytes}}.dump());
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](protocol::authenticate_atom,
           protocol::credential& c) -> caf::result<protocol::authenticated> {
      auto rp = self->make_response_promise<protocol::authenticated>();
      authenticate(self, c,
                   protocol::auth_callback{[rp](caf::expected<protocol::authenticated> r) mutable {
                     if (r) {
                       rp.deliver(std::move(*r));
                     } else {
                       rp.deliver(std::move(r.error()));
                     }
                   }});
      return rp;
    },
    [self](protocol::authenticate_atom, protocol::credential& c, protocol::auth_callback& done) {
      authenticate(self, c, done);
    },
    [self](protocol::throttle_atom, const std::string& account) {
      return self->state.throttle->wait_seconds(account, self->clock().now());
    },
    [self](protocol::throttle_atom, const std::string& account, bool failed) {
      if (failed) {
        self->state.throttle->failed(account, self->clock().now());
      } else {
        self->state.throttle->succeeded(account);
      }
    },
    [self](protocol::session_atom, const std::string& id,
           protocol::audited_work& work) -> caf::result<protocol::audited_result> {
      auto& sessions = self->state.sessions;
      auto i = sessions.find(id);
      if (i == sessions.end()) {
        if (self->state.options.metrics) {
          self->state.options.metrics->count_actor("session", +1);
        }
        auto actor = self->spawn<caf::monitored>(session_actor,
                                                 caf::actor_cast<protocol::tenant_actor>(self),
                                                 self->state.options.session_idle);
        i = sessions.emplace(id, caf::actor_cast<caf::actor>(actor)).first;
      }
      auto rp = self->make_response_promise<protocol::audited_result>();
      rp.delegate(i->second, protocol::run_atom_v, std::move(work));
      return rp;
    },
  };
}

} // namespace

protocol::tenant_actor spawn_tenant(caf::local_actor* directory, protocol::tenant_record record,
                                    tenant_options options) {
  return directory->spawn<caf::linked + caf::monitored>(tenant, std::move(record),
                                                        std::move(options));
}

} // namespace troupe::actors

#include "actors/directory/tenant.hpp"

#include "actors/metrics/metrics_registry.hpp"
#include "protocol/actors.hpp"
#include "protocol/error.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <algorithm>
#include <deque>
#include <optional>
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
              afterwards.push_back(std::move(change.after_append));
              drafts.push_back({work.origin, std::move(change)});
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
  if (self->state.retiring && !self->state.busy && self->state.queue.empty()) {
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

protocol::tenant_actor::behavior_type tenant(tenant_pointer self, protocol::tenant_record record,
                                             tenant_options options) {
  self->state.record = std::move(record);
  self->state.options = std::move(options);
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
    },
    [self](protocol::retire_atom) {
      self->state.retiring = true;
      finish_if_retired(self);
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

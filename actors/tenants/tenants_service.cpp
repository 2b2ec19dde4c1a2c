#include "actors/tenants/tenants_service.hpp"

#include "actors/metrics/metrics_registry.hpp"
#include "protocol/actors.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"
#include "storage/tenants.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>

namespace troupe::actors {

namespace {

using record_promise = caf::typed_response_promise<protocol::tenant_record>;

constexpr std::chrono::seconds hash_timeout{10};

// Runs `body` as one unit of work and delivers its T (or its error) to `rp`.
template <class T, class Promise, class Body>
void run_db(protocol::tenants_actor::pointer self, std::optional<std::string> tenant, Promise rp,
            Body body, std::function<void(const T&)> after = nullptr) {
  // Callers (HTTP handlers) give up after 5 s; the pool bounds its own queue wait.
  constexpr std::chrono::seconds db_timeout{10};
  auto pool = self->system().registry().get<storage::db_pool_actor>(protocol::db_pool_key);
  if (!pool) {
    rp.deliver(caf::make_error(protocol::errc::service_unavailable, "database pool away"));
    return;
  }
  storage::db_work work{std::move(tenant),
                        [body](storage::pg_transaction& tx) -> caf::expected<std::any> {
                          storage::tenant_repository repo{tx};
                          caf::expected<T> result = body(repo, tx);
                          if (!result) {
                            return std::move(result.error());
                          }
                          return std::any{std::move(*result)};
                        }};
  self->request(pool, db_timeout, protocol::run_atom_v, std::move(work))
    .then(
      [rp, after](storage::db_reply& reply) mutable {
        auto value = std::any_cast<T>(std::move(reply.value));
        if (after) {
          after(value);
        }
        rp.deliver(std::move(value));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

void invalidate(protocol::tenants_actor::pointer self, const std::string& id);

// Runs `body` as audited work on the tenant `key` (through the directory and the tenant
// actor, which appends the entry in the same transaction) and delivers its record to `rp`.
void run_audited(protocol::tenants_actor::pointer self, const std::string& key,
                 protocol::audit_origin origin, std::string action, record_promise rp,
                 std::function<caf::expected<protocol::tenant_record>(
                   storage::tenant_repository&, protocol::audit_change&, const std::string& id)>
                   body) {
  constexpr std::chrono::seconds audited_timeout{15};
  auto dir = self->system().registry().get<protocol::directory_actor>(protocol::directory_key);
  if (!dir) {
    rp.deliver(caf::make_error(protocol::errc::service_unavailable, "directory away"));
    return;
  }
  protocol::audited_work work;
  const bool deleted = action == "tenant.deleted";
  work.origin = std::move(origin);
  work.action = std::move(action);
  work.body = [body = std::move(body)](storage::pg_transaction& tx,
                                       protocol::audit_change& change) -> caf::expected<std::any> {
    storage::tenant_repository repo{tx};
    auto record = body(repo, change, *tx.tenant());
    if (!record) {
      return std::move(record.error());
    }
    return std::any{std::move(*record)};
  };
  self->request(dir, audited_timeout, protocol::run_atom_v, key, std::move(work))
    .then(
      [self, rp, deleted](protocol::audited_result& result) mutable {
        auto record = std::any_cast<protocol::tenant_record>(std::move(result.value));
        // Before the answer, so that the caller's next request sees the change.
        if (deleted) {
          invalidate(self, record.id);
        } else if (auto directory = self->system().registry().get<protocol::directory_actor>(
                     protocol::directory_key)) {
          self->send(directory, protocol::update_atom_v, record);
        }
        rp.deliver(std::move(record));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

// An active tenant actor holds the old state: the directory drops it, so the next request
// reloads it (a suspension applies to the very next request).
void invalidate(protocol::tenants_actor::pointer self, const std::string& id) {
  auto dir = self->system().registry().get<protocol::directory_actor>(protocol::directory_key);
  if (dir) {
    self->send(dir, protocol::invalidate_atom_v, id);
  }
}

protocol::tenants_actor::behavior_type
tenants_service(protocol::tenants_actor::pointer self,
                std::shared_ptr<const storage::audit_secrets> secrets,
                std::shared_ptr<metrics_registry> metrics) {
  self->system().registry().put(protocol::tenants_key, self);
  return {
    [self, secrets,
     metrics](protocol::create_atom, protocol::tenant_creation& c,
              protocol::audit_origin& origin) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
      auto hasher
        = self->system().registry().get<protocol::password_hashing_actor>(protocol::hasher_key);
      if (!hasher) {
        return caf::make_error(protocol::errc::service_unavailable, "password hasher away");
      }
      protocol::tenant_record tenant;
      tenant.id = protocol::new_uuid_v7();
      tenant.slug = c.slug;
      tenant.name = c.name;
      tenant.plan = c.plan;
      const auto owner_id = protocol::new_uuid_v7();
      const auto email = c.owner_email;
      self->request(hasher, hash_timeout, protocol::hash_atom_v, std::move(c.owner_password))
        .then(
          [self, rp, tenant, owner_id, email, secrets, metrics,
           origin = std::move(origin)](std::string& hash) {
            run_db<protocol::tenant_record>(
              self, tenant.id, rp,
              [tenant, owner_id, email, secrets, origin, hash = std::move(hash)](
                storage::tenant_repository& repo, storage::pg_transaction& tx) {
                auto created = repo.create(tenant, owner_id, email, hash);
                if (!created) {
                  return created;
                }
                // Entry 1 of the new tenant's chain: nobody else can append to it before
                // this transaction commits (the tenant does not exist until then).
                protocol::audit_change change;
                change.action = "tenant.created";
                change.resource_type = "tenant";
                change.resource_id = created->id;
                change.after = protocol::tenant_json(*created);
                change.subject = owner_id; // the owner's email is theirs
                storage::audit_repository audit{tx, *secrets};
                auto appended = audit.append(storage::audit_head{}, {{origin, std::move(change)}},
                                             nullptr, nullptr, true);
                if (!appended) {
                  return caf::expected<protocol::tenant_record>{std::move(appended.error())};
                }
                return created;
              },
              [metrics](const protocol::tenant_record&) {
                if (metrics) {
                  metrics->count_audit_entries(1);
                }
              });
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](caf::get_atom, const std::string& key) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
      run_db<protocol::tenant_record>(self, std::nullopt, rp,
                                      [key](storage::tenant_repository& repo,
                                            storage::pg_transaction&) { return repo.find(key); });
      return rp;
    },
    [self](protocol::list_atom,
           const protocol::tenant_query& q) -> caf::result<protocol::tenant_page> {
      auto rp = self->make_response_promise<protocol::tenant_page>();
      run_db<protocol::tenant_page>(
        self, std::nullopt, rp,
        [q](storage::tenant_repository& repo, storage::pg_transaction&) { return repo.list(q); });
      return rp;
    },
    [self](protocol::update_atom, const std::string& key, const protocol::tenant_update& u,
           protocol::audit_origin& origin) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
#ifdef TROUPE_BENCH_UNAUDITED
      // Only in scripts/bench's troupe_bench_unaudited build: the same update as one plain
      // unit of work without its audit entry, to measure what the audit costs over HTTP.
      (void)origin;
      run_db<protocol::tenant_record>(
        self, std::nullopt, rp,
        [key, u](storage::tenant_repository& repo, storage::pg_transaction&) {
          return repo.update(key, u);
        },
        [self](const protocol::tenant_record& t) {
          if (auto directory
              = self->system().registry().get<protocol::directory_actor>(protocol::directory_key)) {
            self->send(directory, protocol::update_atom_v, t);
          }
        });
      return rp;
#endif
      run_audited(self, key, std::move(origin), "tenant.updated", rp,
                  [u](storage::tenant_repository& repo, protocol::audit_change& change,
                      const std::string& id) {
                    protocol::tenant_record before;
                    auto after = repo.update(id, u, &before);
                    if (after) {
                      change.resource_type = "tenant";
                      change.resource_id = id;
                      change.before = protocol::tenant_json(before);
                      change.after = protocol::tenant_json(*after);
                    }
                    return after;
                  });
      return rp;
    },
    [self](caf::delete_atom, const std::string& key,
           protocol::audit_origin& origin) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
      run_audited(self, key, std::move(origin), "tenant.deleted", rp,
                  [](storage::tenant_repository& repo, protocol::audit_change& change,
                     const std::string& id) {
                    auto found = repo.find(id);
                    if (found) {
                      change.resource_type = "tenant";
                      change.resource_id = id;
                      change.before = protocol::tenant_json(*found);
                      // Deleted after its entry is appended: the entry's data keys hang on
                      // the tenant, and go with it (its history's personal data is erased).
                      change.after_append = [id](storage::pg_transaction& tx) -> caf::error {
                        storage::tenant_repository r{tx};
                        auto removed = r.remove(id);
                        return removed ? caf::error{} : std::move(removed.error());
                      };
                    }
                    return found;
                  });
      return rp;
    },
  };
}

} // namespace

protocol::tenants_actor spawn_tenants_service(caf::local_actor* parent,
                                              std::shared_ptr<const storage::audit_secrets> audit,
                                              std::shared_ptr<metrics_registry> metrics) {
  return parent->spawn(tenants_service, std::move(audit), std::move(metrics));
}

} // namespace troupe::actors

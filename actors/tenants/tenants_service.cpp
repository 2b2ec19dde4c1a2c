#include "actors/tenants/tenants_service.hpp"

#include "protocol/actors.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"
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
                          caf::expected<T> result = body(repo);
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

// An active tenant actor holds the old state: the directory drops it, so the next request
// reloads it (a suspension applies to the very next request).
void invalidate(protocol::tenants_actor::pointer self, const std::string& id) {
  auto dir = self->system().registry().get<protocol::directory_actor>(protocol::directory_key);
  if (dir) {
    self->send(dir, protocol::invalidate_atom_v, id);
  }
}

// `name` is unused but keeps the spawn non-empty: CAF 0.17.6 dereferences a null argument
// tuple when a function actor is spawned without arguments (UBSan).
protocol::tenants_actor::behavior_type tenants_service(protocol::tenants_actor::pointer self,
                                                       const std::string& /*name*/) {
  self->system().registry().put(protocol::tenants_key, self);
  return {
    [self](protocol::create_atom,
           protocol::tenant_creation& c) -> caf::result<protocol::tenant_record> {
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
          [self, rp, tenant, owner_id, email](std::string& hash) {
            run_db<protocol::tenant_record>(
              self, tenant.id, rp,
              [tenant, owner_id, email, hash = std::move(hash)](storage::tenant_repository& repo) {
                return repo.create(tenant, owner_id, email, hash);
              });
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](caf::get_atom, const std::string& key) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
      run_db<protocol::tenant_record>(
        self, std::nullopt, rp, [key](storage::tenant_repository& repo) { return repo.find(key); });
      return rp;
    },
    [self](protocol::list_atom,
           const protocol::tenant_query& q) -> caf::result<protocol::tenant_page> {
      auto rp = self->make_response_promise<protocol::tenant_page>();
      run_db<protocol::tenant_page>(self, std::nullopt, rp,
                                    [q](storage::tenant_repository& repo) { return repo.list(q); });
      return rp;
    },
    [self](protocol::update_atom, const std::string& key,
           const protocol::tenant_update& u) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
      run_db<protocol::tenant_record>(
        self, std::nullopt, rp,
        [key, u](storage::tenant_repository& repo) { return repo.update(key, u); },
        [self](const protocol::tenant_record& t) { invalidate(self, t.id); });
      return rp;
    },
    [self](caf::delete_atom, const std::string& key) -> caf::result<protocol::tenant_record> {
      auto rp = self->make_response_promise<protocol::tenant_record>();
      run_db<protocol::tenant_record>(
        self, std::nullopt, rp,
        [key](storage::tenant_repository& repo) { return repo.remove(key); },
        [self](const protocol::tenant_record& t) { invalidate(self, t.id); });
      return rp;
    },
  };
}

} // namespace

protocol::tenants_actor spawn_tenants_service(caf::local_actor* parent) {
  return parent->spawn(tenants_service, std::string{"tenants"});
}

} // namespace troupe::actors

#pragma once

// Tenants on a real PostgreSQL, as the server wires them: pool → tenants actor (the
// loader) → directory → tenant actors (chain heads, audited work). Two tenants, alpha and
// beta, exist. Include after defining CAF_SUITE.

#include "actors/directory/directory.hpp"
#include "actors/tenants/tenants_service.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"

#include "tests/support/pg_fixture.hpp"

#include <caf/all.hpp>

#include <any>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace troupe::tests {

inline constexpr auto alpha_id = "0190a3c4-0000-7000-8000-00000000000a";
inline constexpr auto beta_id = "0190a3c4-0000-7000-8000-00000000000b";

struct tenancy_fixture {
  fresh_database db;
  pool_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::shared_ptr<const storage::audit_secrets> secrets
    = storage::audit_secrets::derive(protocol::crypto::random_bytes(32));
  storage::db_pool_actor pool;
  protocol::tenants_actor tenants;
  protocol::directory_actor dir;

  explicit tenancy_fixture(std::size_t pool_size = 4) {
    using namespace std::chrono_literals;
    db.migrate();
    storage::db_pool_options options;
    options.conninfo = db.app_conninfo();
    options.size = pool_size;
    pool = storage::spawn_db_pool(sys, options);
    // The pool registers itself when it starts: wait for it, so no unit of work races it.
    self->request(pool, 10s, protocol::ready_atom_v)
      .receive([](protocol::readiness&) {}, [](caf::error&) {});
    tenants = actors::spawn_tenants_service(self.operator->(), secrets);
    actors::directory_options dopts;
    auto* system = &sys;
    dopts.loader = [system] {
      return system->registry().get<protocol::tenant_loader_actor>(protocol::tenants_key);
    };
    dopts.tenant.audit = secrets;
    dir = actors::spawn_directory(sys, dopts);
    auto owner = connect(db.owner_conninfo());
    run(*owner, std::string{"INSERT INTO tenants (id, slug, name) VALUES ('"} + alpha_id
                  + "', 'alpha', 'Alpha'), ('" + beta_id + "', 'beta', 'Beta')");
  }

  /// Runs `body` as one unit of work on the pool (as `tenant`, or platform work) and answers
  /// its value or error.
  template <class T>
  caf::expected<T> on_pool(std::optional<std::string> tenant,
                           std::function<caf::expected<T>(storage::pg_transaction&)> body) {
    storage::db_work work{std::move(tenant),
                          [body](storage::pg_transaction& tx) -> caf::expected<std::any> {
                            auto r = body(tx);
                            if (!r) {
                              return std::move(r.error());
                            }
                            return std::any{std::move(*r)};
                          }};
    caf::expected<T> result{caf::error{}};
    self->request(pool, std::chrono::seconds{60}, protocol::run_atom_v, std::move(work))
      .receive([&](storage::db_reply& r) { result = std::any_cast<T>(std::move(r.value)); },
               [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  tenancy_fixture(const tenancy_fixture&) = delete;
  tenancy_fixture& operator=(const tenancy_fixture&) = delete;

  ~tenancy_fixture() {
    for (const auto& a : {caf::actor_cast<caf::actor>(dir), caf::actor_cast<caf::actor>(tenants),
                          caf::actor_cast<caf::actor>(pool)}) {
      self->send_exit(a, caf::exit_reason::user_shutdown);
    }
    sys.registry().erase(protocol::db_pool_key);
    sys.registry().erase(protocol::tenants_key);
    sys.registry().erase(protocol::directory_key);
  }
};

} // namespace troupe::tests

#define CAF_SUITE storage.directory

#include "actors/directory/directory.hpp"

#include "actors/tenants/tenants_service.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"

#include "tests/support/tenancy_fixture.hpp"

#include <caf/all.hpp>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// Tenants activated from a real PostgreSQL: pool → tenants actor (the loader) → directory.
struct fixture : tests::tenancy_fixture {
  fixture() : tests::tenancy_fixture(2) {}

  caf::expected<protocol::tenant_record> resolve(const std::string& key) {
    caf::expected<protocol::tenant_record> result{caf::error{}};
    self->request(dir, 10s, protocol::resolve_atom_v, key)
      .receive([&](protocol::tenant_record& r) { result = std::move(r); },
               [&](caf::error& e) { result = std::move(e); });
    return result;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(directory_integration, fixture)

CAF_TEST(a tenant is activated from postgresql by slug and by id) {
  auto by_slug = resolve("alpha");
  CAF_REQUIRE(by_slug);
  CAF_CHECK_EQUAL(by_slug->id, "0190a3c4-0000-7000-8000-00000000000a");
  CAF_CHECK_EQUAL(by_slug->name, "Alpha");
  CAF_CHECK_EQUAL(by_slug->status, "active");
  auto by_id = resolve("0190a3c4-0000-7000-8000-00000000000b");
  CAF_REQUIRE(by_id);
  CAF_CHECK_EQUAL(by_id->slug, "beta");
}

CAF_TEST(an unknown tenant is not found) {
  auto result = resolve("gamma");
  CAF_REQUIRE(!result);
  CAF_CHECK(result.error() == protocol::errc::not_found);
}

CAF_TEST(a suspension in postgresql applies once the tenant is invalidated) {
  CAF_REQUIRE(resolve("alpha"));
  auto owner = tests::connect(db.owner_conninfo());
  tests::run(*owner, "UPDATE tenants SET status = 'suspended' WHERE slug = 'alpha'");
  self->send(dir, protocol::invalidate_atom_v, std::string{"0190a3c4-0000-7000-8000-00000000000a"});
  auto result = resolve("alpha");
  CAF_REQUIRE(!result);
  CAF_CHECK(result.error() == protocol::errc::tenant_suspended);
}

CAF_TEST(an admin update through the tenants actor reaches the active tenant at once) {
  CAF_REQUIRE(resolve("beta"));
  protocol::tenant_update u;
  u.status = "suspended";
  caf::expected<protocol::tenant_record> updated{caf::error{}};
  self
    ->request(tenants, 10s, protocol::update_atom_v, std::string{"beta"}, u,
              protocol::audit_origin{})
    .receive([&](protocol::tenant_record& r) { updated = std::move(r); },
             [&](caf::error& e) { updated = std::move(e); });
  CAF_REQUIRE(updated);
  CAF_CHECK_EQUAL(updated->status, "suspended");
  // The invalidation is sent before the answer: the next resolve reloads.
  auto result = resolve("beta");
  CAF_REQUIRE(!result);
  CAF_CHECK(result.error() == protocol::errc::tenant_suspended);
}

CAF_TEST_FIXTURE_SCOPE_END()

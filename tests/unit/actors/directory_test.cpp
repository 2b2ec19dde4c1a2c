#define CAF_SUITE actors.directory

#include "actors/directory/directory.hpp"

#include "actors/auth/key_ring.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/jwt.hpp"

#include "tests/support/actor_fixture.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <ctime>
#include <map>
#include <memory>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// An in-memory stand-in for the `tenants` actor: the directory's loader interface.
protocol::tenant_loader_actor::behavior_type
loader(std::shared_ptr<std::map<std::string, protocol::tenant_record>> tenants,
       std::shared_ptr<int> loads) {
  return {
    [tenants, loads](caf::get_atom,
                     const std::string& key) -> caf::result<protocol::tenant_record> {
      ++*loads;
      auto i = tenants->find(key);
      if (i == tenants->end()) {
        return caf::make_error(protocol::errc::not_found);
      }
      return i->second;
    },
  };
}

protocol::tenant_record record(const std::string& id, const std::string& slug,
                               const std::string& status = "active") {
  protocol::tenant_record r;
  r.id = id;
  r.slug = slug;
  r.name = slug;
  r.status = status;
  return r;
}

const std::string acme_id = "0190a3c4-0000-7000-8000-000000000001";
const std::string frozen_id = "0190a3c4-0000-7000-8000-000000000002";

struct fixture : tests::actor_fixture {
  std::shared_ptr<std::map<std::string, protocol::tenant_record>> tenants
    = std::make_shared<std::map<std::string, protocol::tenant_record>>();
  std::shared_ptr<int> loads = std::make_shared<int>(0);
  protocol::tenant_loader_actor fake;
  protocol::directory_actor dir;
  // The signing key of access tokens, as the key manager would publish it.
  protocol::jwt::ed25519_key signing = protocol::jwt::generate_ed25519();
  std::shared_ptr<actors::key_ring> ring = std::make_shared<actors::key_ring>();

  fixture() {
    put(record(acme_id, "acme"));
    put(record(frozen_id, "frozen", "suspended"));
    fake = sys.spawn(loader, tenants, loads);
    actors::directory_options opts;
    opts.idle_timeout = 60s;
    opts.sweep_interval = 10s;
    opts.load_timeout = 5s;
    auto snapshot = std::make_shared<actors::key_snapshot>();
    snapshot->signing_kid = "k1";
    snapshot->signing = signing;
    snapshot->public_keys["k1"] = signing.public_key;
    ring->publish(snapshot);
    opts.tenant.keys = ring;
    opts.tenant.issuer = "troupe";
    opts.tenant.max_failures = 3;
    opts.tenant.anonymous_limit = {3, 60};
    auto handle = fake;
    opts.loader = [handle] {
      return handle;
    };
    dir = actors::spawn_directory(sys, opts);
    sched.run();
  }

  ~fixture() {
    anon_send_exit(dir, caf::exit_reason::user_shutdown);
    anon_send_exit(fake, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void put(const protocol::tenant_record& r) {
    (*tenants)[r.id] = r;
    (*tenants)[r.slug] = r;
  }

  caf::expected<protocol::tenant_record> resolve(const std::string& key) {
    self->send(dir, protocol::resolve_atom_v, key);
    sched.run();
    caf::expected<protocol::tenant_record> result{caf::error{}};
    self->receive([&](protocol::tenant_record& r) { result = std::move(r); },
                  [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  caf::expected<protocol::authenticated> authenticate(const std::string& key_or_slug,
                                                      protocol::credential c) {
    self->send(dir, protocol::authenticate_atom_v, key_or_slug, std::move(c));
    sched.run();
    caf::expected<protocol::authenticated> result{caf::error{}};
    self->receive([&](protocol::authenticated& a) { result = std::move(a); },
                  [&](caf::error& e) { result = std::move(e); });
    return result;
  }

  // An access token of a user of `tenant`, signed with the fixture's key.
  std::string token(const std::string& tenant, std::int64_t exp_in = 900) {
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    nlohmann::json claims{{"iss", "troupe"}, {"sub", "0190a3c4-0000-7000-8000-00000000000a"},
                          {"tid", tenant},   {"sid", "0190a3c4-0000-7000-8000-00000000000b"},
                          {"iat", now},      {"exp", now + exp_in}};
    return protocol::jwt::sign(claims, "k1", signing);
  }

  static protocol::credential cred(std::string kind, std::string token) {
    return {std::move(kind), std::move(token), "192.0.2.9"};
  }

  std::uint32_t throttle_wait(const std::string& account) {
    self->send(dir, protocol::throttle_atom_v, std::string{"acme"}, account);
    sched.run();
    std::uint32_t wait = 0;
    self->receive([&](std::uint32_t w) { wait = w; });
    return wait;
  }

  std::uint64_t active() {
    self->send(dir, caf::get_atom_v);
    sched.run();
    std::uint64_t n = 0;
    self->receive([&](std::uint64_t x) { n = x; });
    return n;
  }

  protocol::tenant_actor tenant_of(const std::string& id) {
    self->send(dir, caf::get_atom_v, id);
    sched.run();
    protocol::tenant_actor handle;
    self->receive([&](protocol::tenant_actor& h) { handle = std::move(h); });
    return handle;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(directory_tests, fixture)

CAF_TEST(the first use of a tenant activates it from the loader and later uses do not ) {
  CAF_CHECK_EQUAL(active(), 0u);
  auto first = resolve("acme");
  CAF_REQUIRE(first);
  CAF_CHECK_EQUAL(first->id, acme_id);
  CAF_CHECK_EQUAL(*loads, 1);
  CAF_CHECK_EQUAL(active(), 1u);
  CAF_CHECK(resolve("acme"));
  CAF_CHECK(resolve(acme_id)); // by id: the same active tenant
  CAF_CHECK_EQUAL(*loads, 1);
  CAF_CHECK_EQUAL(active(), 1u);
}

CAF_TEST(an unknown tenant is not found and nothing stays active) {
  auto result = resolve("nobody");
  CAF_REQUIRE(!result);
  CAF_CHECK(result.error() == protocol::errc::not_found);
  CAF_CHECK_EQUAL(active(), 0u);
}

CAF_TEST(a suspended tenant answers tenant suspended) {
  auto result = resolve("frozen");
  CAF_REQUIRE(!result);
  CAF_CHECK(result.error() == protocol::errc::tenant_suspended);
}

CAF_TEST(concurrent first uses load the tenant once) {
  for (int i = 0; i < 5; ++i) {
    self->send(dir, protocol::resolve_atom_v, std::string{"acme"});
  }
  sched.run();
  int answers = 0;
  for (int i = 0; i < 5; ++i) {
    self->receive([&](protocol::tenant_record& r) {
      CAF_CHECK_EQUAL(r.slug, "acme");
      ++answers;
    });
  }
  CAF_CHECK_EQUAL(answers, 5);
  CAF_CHECK_EQUAL(*loads, 1);
}

CAF_TEST(an idle tenant is passivated and its next use reloads it) {
  CAF_REQUIRE(resolve("acme"));
  advance_time(50s);
  sched.run();
  CAF_CHECK_EQUAL(active(), 1u); // 50 s idle: not yet
  advance_time(20s);
  sched.run();
  CAF_CHECK_EQUAL(active(), 0u); // past 60 s at the 70 s sweep
  CAF_CHECK_EQUAL(*loads, 1);
  CAF_REQUIRE(resolve("acme"));
  CAF_CHECK_EQUAL(*loads, 2);
}

CAF_TEST(a tenant in use is not passivated) {
  for (int i = 0; i < 8; ++i) {
    CAF_REQUIRE(resolve("acme"));
    advance_time(10s);
    sched.run();
  }
  CAF_CHECK_EQUAL(active(), 1u);
  CAF_CHECK_EQUAL(*loads, 1);
}

CAF_TEST(a crashed tenant actor is dropped and reloaded on its next use) {
  CAF_REQUIRE(resolve("acme"));
  auto tenant = tenant_of(acme_id);
  CAF_REQUIRE(tenant);
  self->monitor(tenant);
  // A crash: an error exit (an untrappable kill would take the linked directory along,
  // which is the point of linking when the directory itself is stopped).
  self->send_exit(tenant, caf::make_error(caf::sec::runtime_error));
  sched.run();
  self->receive([&](caf::down_msg& msg) { CAF_CHECK(msg.reason == caf::sec::runtime_error); });
  CAF_CHECK_EQUAL(active(), 0u); // the directory survived and forgot it
  put(record(acme_id, "acme"));  // the reload sees the stored state
  auto again = resolve("acme");
  CAF_REQUIRE(again);
  CAF_CHECK_EQUAL(*loads, 2);
  CAF_CHECK(tenant_of(acme_id) != tenant);
}

CAF_TEST(an invalidated tenant reloads its changed record) {
  CAF_REQUIRE(resolve("acme"));
  put(record(acme_id, "acme", "suspended"));
  CAF_CHECK(resolve("acme")); // still the cached record
  self->send(dir, protocol::invalidate_atom_v, acme_id);
  sched.run();
  CAF_CHECK_EQUAL(active(), 0u);
  auto after = resolve("acme");
  CAF_REQUIRE(!after);
  CAF_CHECK(after.error() == protocol::errc::tenant_suspended);
  CAF_CHECK_EQUAL(*loads, 2);
}

CAF_TEST(a loader that does not answer fails the activation after its timeout) {
  // The unused argument: CAF 0.17.6 dereferences a null argument tuple when a function actor
  // is spawned without arguments (UBSan).
  auto silent = sys.spawn(
    [](int) -> protocol::tenant_loader_actor::behavior_type {
      return {[](caf::get_atom, const std::string&) -> caf::result<protocol::tenant_record> {
        return caf::delegated<protocol::tenant_record>{};
      }};
    },
    0);
  actors::directory_options opts;
  opts.load_timeout = 5s;
  opts.loader = [silent] {
    return silent;
  };
  auto slow_dir = actors::spawn_directory(sys, opts);
  sched.run();
  self->send(slow_dir, protocol::resolve_atom_v, std::string{"acme"});
  sched.run();
  advance_time(5s);
  sched.run();
  bool failed = false;
  self->receive([&](caf::error& e) { failed = e == caf::sec::request_timeout; },
                [&](protocol::tenant_record&) {});
  CAF_CHECK(failed);
  anon_send_exit(slow_dir, caf::exit_reason::user_shutdown);
  anon_send_exit(silent, caf::exit_reason::user_shutdown);
  sched.run();
}

CAF_TEST(the admin credential acts with every permission and none is anonymous) {
  auto admin = authenticate("acme", cred("admin", ""));
  CAF_REQUIRE(admin);
  CAF_CHECK_EQUAL(admin->tenant.id, acme_id);
  CAF_CHECK_EQUAL(admin->who.type, "admin");
  CAF_CHECK_EQUAL(admin->who.permissions, std::vector<std::string>{"*"});
  auto none = authenticate("acme", cred("", ""));
  CAF_REQUIRE(none);
  CAF_CHECK_EQUAL(none->who.type, "anonymous");
  CAF_CHECK_EQUAL(none->who.refused, 0);
}

CAF_TEST(expired tampered and foreign access tokens are refused without the database) {
  auto expired = authenticate("acme", cred("jwt", token(acme_id, -1)));
  CAF_REQUIRE(expired);
  CAF_CHECK_EQUAL(expired->who.type, "anonymous");
  CAF_CHECK_EQUAL(expired->who.refused, static_cast<std::uint8_t>(protocol::errc::token_expired));

  auto good = token(acme_id);
  auto tampered = good;
  tampered[good.find('.') + 5] ^= 1;
  auto bad = authenticate("acme", cred("jwt", tampered));
  CAF_REQUIRE(bad);
  CAF_CHECK_EQUAL(bad->who.refused, static_cast<std::uint8_t>(protocol::errc::unauthenticated));

  // Signed by another key under the same kid.
  auto other = protocol::jwt::generate_ed25519();
  nlohmann::json claims{{"iss", "troupe"},
                        {"sub", "u"},
                        {"tid", acme_id},
                        {"sid", "s"},
                        {"exp", std::time(nullptr) + 60}};
  auto forged = authenticate("acme", cred("jwt", protocol::jwt::sign(claims, "k1", other)));
  CAF_REQUIRE(forged);
  CAF_CHECK_EQUAL(forged->who.refused, static_cast<std::uint8_t>(protocol::errc::unauthenticated));

  // A token of another tenant used with this one.
  auto foreign = authenticate("acme", cred("jwt", token(frozen_id)));
  CAF_REQUIRE(!foreign);
  CAF_CHECK(foreign.error() == protocol::errc::tenant_mismatch);
}

CAF_TEST(a verified token whose session is not cached is looked up in the database) {
  // No pool in this test: the lookup fails, which shows the token passed verification.
  auto result = authenticate("acme", cred("jwt", token(acme_id)));
  CAF_REQUIRE(!result);
  CAF_CHECK(result.error() == protocol::errc::service_unavailable);
}

CAF_TEST(anonymous requests are limited per address until the bucket refills) {
  // limits.anonymous in this fixture: 3 per 60 s (the directory's tenant options).
  for (int i = 0; i < 3; ++i) {
    auto r = authenticate("acme", cred("", ""));
    CAF_REQUIRE(r);
    CAF_CHECK(r->rate.allowed);
    CAF_CHECK_EQUAL(r->rate.bucket, "anonymous");
    CAF_CHECK_EQUAL(r->rate.remaining, static_cast<std::uint32_t>(2 - i));
  }
  auto refused = authenticate("acme", cred("", ""));
  CAF_REQUIRE(refused);
  CAF_CHECK(!refused->rate.allowed);
  CAF_CHECK_EQUAL(refused->rate.reset_s, 20u);
  // Another address has its own bucket; the admin token is not limited at all.
  auto other = authenticate("acme", protocol::credential{"", "", "192.0.2.10"});
  CAF_REQUIRE(other);
  CAF_CHECK(other->rate.allowed);
  auto admin = authenticate("acme", cred("admin", ""));
  CAF_REQUIRE(admin);
  CAF_CHECK(admin->rate.bucket.empty());
  advance_time(20s);
  sched.run();
  auto again = authenticate("acme", cred("", ""));
  CAF_REQUIRE(again);
  CAF_CHECK(again->rate.allowed);
}

CAF_TEST(logins of an account are throttled after max failures for fifteen minutes) {
  const std::string account = "ada@example.com|192.0.2.1";
  CAF_CHECK_EQUAL(throttle_wait(account), 0u);
  for (int i = 0; i < 3; ++i) {
    self->send(dir, protocol::throttle_atom_v, std::string{"acme"}, account, true);
    sched.run();
  }
  CAF_CHECK_EQUAL(throttle_wait(account), 900u);
  CAF_CHECK_EQUAL(throttle_wait("grace@example.com|192.0.2.1"), 0u);
  advance_time(600s);
  sched.run();
  CAF_CHECK_EQUAL(throttle_wait(account), 300u);
  advance_time(300s);
  sched.run();
  CAF_CHECK_EQUAL(throttle_wait(account), 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()

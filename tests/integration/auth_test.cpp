#define CAF_SUITE storage.auth

#include "storage/auth.hpp"

#include "actors/auth/key_manager.hpp"
#include "actors/auth/key_ring.hpp"
#include "protocol/crypto.hpp"
#include "protocol/jwt.hpp"
#include "protocol/request_id.hpp"
#include "storage/idempotency.hpp"
#include "storage/roles.hpp"
#include "storage/usage.hpp"

#include "tests/support/tenancy_fixture.hpp"

#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <thread>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

using tests::alpha_id;
using tests::beta_id;

struct fixture : tests::tenancy_fixture {
  // A user of alpha with a session and its refresh token.
  std::string user = protocol::new_uuid_v7();
  std::string session = protocol::new_uuid_v7();
  std::string token_hash = protocol::crypto::sha256("refresh-token-1");

  fixture() {
    auto made = auth<bool>(alpha_id, [this](storage::auth_repository& repo) -> caf::expected<bool> {
      auto u = repo.insert_user(user, "ada@example.com", "$argon2id$x", std::nullopt, {"member"});
      if (!u) {
        return std::move(u.error());
      }
      if (auto err = repo.create_session(session, user, 3600, "192.0.2.1", "test", token_hash)) {
        return err;
      }
      return true;
    });
    CAF_REQUIRE(made);
  }

  template <class T>
  caf::expected<T> auth(std::optional<std::string> tenant,
                        std::function<caf::expected<T>(storage::auth_repository&)> body) {
    return on_pool<T>(std::move(tenant), [body](storage::pg_transaction& tx) {
      storage::auth_repository repo{tx};
      return body(repo);
    });
  }

  // Starts a key manager publishing into `ring` and waits (at most 10 s) for its first key.
  protocol::key_manager_actor start_keys(const std::shared_ptr<actors::key_ring>& ring,
                                         std::string seal_key, std::int64_t rotation_s,
                                         caf::timespan refresh = 60s) {
    actors::key_manager_options o;
    o.ring = ring;
    o.seal_key = std::move(seal_key);
    o.rotation_s = rotation_s;
    o.access_ttl_s = 900;
    o.refresh_interval = refresh;
    auto manager = actors::spawn_key_manager(self.operator->(), o);
    for (int i = 0; i < 1000 && ring->current()->signing_kid.empty(); ++i) {
      std::this_thread::sleep_for(10ms);
    }
    return manager;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(auth_tests, fixture)

CAF_TEST(sessions and refresh tokens of one tenant are invisible to another) {
  auto mine = auth<std::optional<storage::refresh_row>>(
    alpha_id, [this](storage::auth_repository& repo) { return repo.refresh_token(token_hash); });
  CAF_REQUIRE(mine);
  CAF_REQUIRE(*mine);
  CAF_CHECK_EQUAL((*mine)->session_id, session);
  CAF_CHECK(!(*mine)->spent);
  CAF_CHECK_EQUAL((*mine)->session.user_id, user);

  auto theirs = auth<std::optional<storage::refresh_row>>(
    beta_id, [this](storage::auth_repository& repo) { return repo.refresh_token(token_hash); });
  CAF_REQUIRE(theirs);
  CAF_CHECK(!*theirs);
  auto revoked = auth<bool>(beta_id, [this](storage::auth_repository& repo) {
    return repo.revoke_session(session, "", "test");
  });
  CAF_REQUIRE(revoked);
  CAF_CHECK(!*revoked);
  auto listed = auth<std::vector<storage::session_row>>(
    beta_id, [this](storage::auth_repository& repo) { return repo.sessions_of(user, "", 50); });
  CAF_REQUIRE(listed);
  CAF_CHECK(listed->empty());
}

CAF_TEST(a refresh token is spent once) {
  const auto next = protocol::crypto::sha256("refresh-token-2");
  auto first
    = auth<bool>(alpha_id, [this, next](storage::auth_repository& repo) -> caf::expected<bool> {
        if (auto err = repo.rotate(session, token_hash, next, "192.0.2.2", "test")) {
          return err;
        }
        return true;
      });
  CAF_REQUIRE(first);
  auto again = auth<bool>(alpha_id, [this](storage::auth_repository& repo) -> caf::expected<bool> {
    if (auto err = repo.rotate(session, token_hash, protocol::crypto::sha256("x"), "", "")) {
      return err;
    }
    return true;
  });
  CAF_REQUIRE(!again);
  CAF_CHECK(again.error() == protocol::errc::conflict);
  auto old = auth<std::optional<storage::refresh_row>>(
    alpha_id, [this](storage::auth_repository& repo) { return repo.refresh_token(token_hash); });
  CAF_REQUIRE(old && *old);
  CAF_CHECK((*old)->spent);
  auto row = auth<std::optional<storage::session_row>>(
    alpha_id, [this](storage::auth_repository& repo) { return repo.session(session); });
  CAF_REQUIRE(row && *row);
  CAF_CHECK_EQUAL((*row)->ip, "192.0.2.2");
}

CAF_TEST(revoking every session but one keeps that one) {
  const auto second = protocol::new_uuid_v7();
  auto made
    = auth<bool>(alpha_id, [this, second](storage::auth_repository& repo) -> caf::expected<bool> {
        if (auto err
            = repo.create_session(second, user, 3600, "", "", protocol::crypto::sha256("t2"))) {
          return err;
        }
        return true;
      });
  CAF_REQUIRE(made);
  auto revoked = auth<std::vector<std::string>>(alpha_id, [this](storage::auth_repository& repo) {
    return repo.revoke_sessions_of(user, session, "password changed");
  });
  CAF_REQUIRE(revoked);
  CAF_CHECK_EQUAL(*revoked, std::vector<std::string>{second});
  auto live = auth<std::vector<storage::session_row>>(
    alpha_id, [this](storage::auth_repository& repo) { return repo.sessions_of(user, "", 50); });
  CAF_REQUIRE(live);
  CAF_REQUIRE_EQUAL(live->size(), 1u);
  CAF_CHECK_EQUAL(live->front().id, session);
}

CAF_TEST(recovery codes work once and totp steps only forward) {
  const auto code = protocol::crypto::sha256("abcde-fghij");
  auto set
    = auth<bool>(alpha_id, [this, code](storage::auth_repository& repo) -> caf::expected<bool> {
        if (auto err = repo.set_recovery_codes(user, {code, protocol::crypto::sha256("other")})) {
          return err;
        }
        return true;
      });
  CAF_REQUIRE(set);
  auto use = [this, code] {
    return auth<bool>(alpha_id, [this, code](storage::auth_repository& repo) {
      return repo.use_recovery_code(user, code);
    });
  };
  CAF_CHECK_EQUAL(use(), true);
  CAF_CHECK_EQUAL(use(), false);
  auto step = [this](std::int64_t s) {
    return auth<bool>(
      alpha_id, [this, s](storage::auth_repository& repo) { return repo.use_totp_step(user, s); });
  };
  CAF_CHECK_EQUAL(step(100), true);
  CAF_CHECK_EQUAL(step(100), false);
  CAF_CHECK_EQUAL(step(99), false);
  CAF_CHECK_EQUAL(step(101), true);
}

CAF_TEST(an api key is found from any tenant but indexed only for its own) {
  const auto hash = protocol::crypto::sha256("trp_test-key");
  auto created = auth<storage::api_key_row>(alpha_id, [this, hash](storage::auth_repository& repo) {
    return repo.insert_api_key(alpha_id, protocol::new_uuid_v7(), "ci", "trp_test-key", hash,
                               {"audit:read"}, user, std::nullopt);
  });
  CAF_REQUIRE(created);
  CAF_CHECK_EQUAL(created->permissions, std::vector<std::string>{"audit:read"});
  auto tenant = auth<std::optional<std::string>>(
    beta_id, [hash](storage::auth_repository& repo) { return repo.api_key_tenant(hash); });
  CAF_REQUIRE(tenant && *tenant);
  CAF_CHECK_EQUAL(**tenant, alpha_id);
  auto row = auth<std::optional<storage::api_key_row>>(
    beta_id, [hash](storage::auth_repository& repo) { return repo.api_key_by_hash(hash); });
  CAF_REQUIRE(row);
  CAF_CHECK(!*row); // the key itself stays alpha's
  // Beta cannot claim a hash for alpha (or anyone but itself).
  auto forged = auth<storage::api_key_row>(beta_id, [this](storage::auth_repository& repo) {
    return repo.insert_api_key(alpha_id, protocol::new_uuid_v7(), "x", "trp_x",
                               protocol::crypto::sha256("trp_forged"), {"*"}, user, std::nullopt);
  });
  CAF_REQUIRE(!forged);
  CAF_CHECK_EQUAL(tests::sqlstate_of(forged.error()), "42501");
}

CAF_TEST(key managers starting at once make one signing key that verifies tokens) {
  const auto seal = protocol::crypto::random_bytes(32);
  auto ring_a = std::make_shared<actors::key_ring>();
  auto ring_b = std::make_shared<actors::key_ring>();
  auto a = start_keys(ring_a, seal, 30 * 86400);
  auto b = start_keys(ring_b, seal, 30 * 86400);
  const auto kid = ring_a->current()->signing_kid;
  CAF_REQUIRE(!kid.empty());
  CAF_CHECK_EQUAL(ring_b->current()->signing_kid, kid);
  CAF_CHECK_EQUAL(
    tests::query(*tests::connect(db.owner_conninfo()), "SELECT count(*) FROM signing_keys"), "1");
  // The private key is stored sealed, never in the clear.
  const auto snap = ring_a->current();
  const auto stored = tests::query(*tests::connect(db.owner_conninfo()),
                                   "SELECT encode(private_sealed, 'hex') FROM signing_keys");
  CAF_CHECK(stored.find(protocol::crypto::hex(snap->signing.private_seed)) == std::string::npos);
  // A token signed by one node verifies with the other's snapshot.
  const auto token = protocol::jwt::sign(
    nlohmann::json{{"iss", "troupe"}, {"exp", std::time(nullptr) + 60}}, kid, snap->signing);
  auto verified = protocol::jwt::verify(
    token,
    [&ring_b](std::string_view k) -> std::optional<std::string> {
      auto keys = ring_b->current();
      auto i = keys->public_keys.find(std::string{k});
      return i == keys->public_keys.end() ? std::nullopt : std::optional<std::string>{i->second};
    },
    "troupe", std::time(nullptr));
  CAF_CHECK(!verified.error);
  auto jwks = nlohmann::json::parse(ring_b->current()->jwks);
  CAF_REQUIRE_EQUAL(jwks["keys"].size(), 1u);
  CAF_CHECK_EQUAL(jwks["keys"][0]["kid"], kid);
  CAF_CHECK(!jwks["keys"][0].contains("d"));
  // Another key-encryption key cannot open the stored key: nothing is published.
  auto ring_c = std::make_shared<actors::key_ring>();
  auto c = start_keys(ring_c, protocol::crypto::random_bytes(32), 30 * 86400);
  CAF_CHECK(ring_c->current()->signing_kid.empty());
  for (const auto& m : {a, b, c}) {
    self->send_exit(m, caf::exit_reason::user_shutdown);
  }
  sys.registry().erase(protocol::key_manager_key);
}

CAF_TEST(a rotated key stays in the jwks while its tokens can live) {
  auto ring = std::make_shared<actors::key_ring>();
  // Rotation after 1 s, re-read every 200 ms.
  auto manager = start_keys(ring, protocol::crypto::random_bytes(32), 1, 200ms);
  const auto first = ring->current()->signing_kid;
  CAF_REQUIRE(!first.empty());
  for (int i = 0; i < 500 && ring->current()->signing_kid == first; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const auto snap = ring->current();
  CAF_CHECK_NOT_EQUAL(snap->signing_kid, first);
  CAF_CHECK_EQUAL(snap->public_keys.count(first), 1u); // still verifies what it signed
  CAF_CHECK_EQUAL(nlohmann::json::parse(snap->jwks)["keys"].size(), snap->public_keys.size());
  self->send_exit(manager, caf::exit_reason::user_shutdown);
  sys.registry().erase(protocol::key_manager_key);
}

CAF_TEST(custom roles belong to their tenant and a forced delete unassigns them) {
  auto roles = [this](std::optional<std::string> tenant,
                      std::function<caf::expected<bool>(storage::role_repository&)> body) {
    return on_pool<bool>(std::move(tenant), [body](storage::pg_transaction& tx) {
      storage::role_repository repo{tx};
      return body(repo);
    });
  };
  auto made = roles(alpha_id, [this](storage::role_repository& repo) -> caf::expected<bool> {
    auto r = repo.insert("auditor", {"audit:read"}, {"viewer"});
    if (!r) {
      return std::move(r.error());
    }
    auto lead = repo.insert("lead", {"users:write"}, {"auditor"});
    if (!lead) {
      return std::move(lead.error());
    }
    return true;
  });
  CAF_REQUIRE(made);
  auto assigned
    = auth<bool>(alpha_id, [this](storage::auth_repository& repo) -> caf::expected<bool> {
        auto u = repo.set_roles(user, {"member", "auditor"});
        if (!u) {
          return std::move(u.error());
        }
        return u->has_value();
      });
  CAF_REQUIRE(assigned && *assigned);
  // Beta sees none of it, and cannot take the name away from alpha.
  auto seen = roles(beta_id, [](storage::role_repository& repo) -> caf::expected<bool> {
    auto all = repo.all();
    if (!all) {
      return std::move(all.error());
    }
    return all->empty();
  });
  CAF_REQUIRE(seen);
  CAF_CHECK(*seen);
  auto theirs
    = roles(beta_id, [](storage::role_repository& repo) { return repo.remove("auditor"); });
  CAF_REQUIRE(theirs);
  CAF_CHECK(!*theirs);
  // In use by the user and by "lead": a forced delete removes both uses.
  auto deleted = roles(alpha_id, [this](storage::role_repository& repo) -> caf::expected<bool> {
    auto uses = repo.uses("auditor");
    if (!uses) {
      return std::move(uses.error());
    }
    CAF_CHECK_EQUAL(uses->first, std::vector<std::string>{user});
    CAF_CHECK_EQUAL(uses->second, std::vector<std::string>{"lead"});
    if (auto err = repo.remove_everywhere("auditor")) {
      return err;
    }
    return repo.remove("auditor");
  });
  CAF_REQUIRE(deleted);
  CAF_CHECK(*deleted);
  auto after = auth<std::optional<storage::user_row>>(
    alpha_id, [this](storage::auth_repository& repo) { return repo.user_by_id(user); });
  CAF_REQUIRE(after && *after);
  CAF_CHECK_EQUAL((*after)->roles, std::vector<std::string>{"member"});
  auto lead = roles(alpha_id, [](storage::role_repository& repo) -> caf::expected<bool> {
    auto r = repo.find("lead");
    if (!r) {
      return std::move(r.error());
    }
    return *r && (*r)->inherits.empty();
  });
  CAF_REQUIRE(lead);
  CAF_CHECK(*lead);
}

CAF_TEST(an idempotency key is claimed once released on failure and expires) {
  using outcome = storage::idempotency_claim::outcome;
  auto claim = [this](std::string key, std::string fingerprint, std::uint32_t ttl) {
    return on_pool<storage::idempotency_claim>(
      alpha_id, [key, fingerprint, ttl](storage::pg_transaction& tx) {
        storage::idempotency_repository repo{tx};
        return repo.claim("user:u", key, fingerprint, 60, ttl);
      });
  };
  auto step = [this](std::function<caf::error(storage::idempotency_repository&)> f) {
    return on_pool<bool>(alpha_id, [f](storage::pg_transaction& tx) -> caf::expected<bool> {
      storage::idempotency_repository repo{tx};
      if (auto err = f(repo)) {
        return err;
      }
      return true;
    });
  };
  const auto fp = protocol::crypto::sha256("POST /v1/roles");
  auto first = claim("k1", fp, 3600);
  CAF_REQUIRE(first);
  CAF_CHECK(first->result == outcome::claimed);
  auto again = claim("k1", fp, 3600);
  CAF_REQUIRE(again);
  CAF_CHECK(again->result == outcome::in_flight);
  auto other = claim("k1", protocol::crypto::sha256("other"), 3600);
  CAF_REQUIRE(other);
  CAF_CHECK(other->result == outcome::mismatch);
  // Beta's key of the same name is its own.
  auto beta = on_pool<storage::idempotency_claim>(beta_id, [fp](storage::pg_transaction& tx) {
    storage::idempotency_repository repo{tx};
    return repo.claim("user:u", "k1", fp, 60, 3600);
  });
  CAF_REQUIRE(beta);
  CAF_CHECK(beta->result == outcome::claimed);
  // Kept: replayed with its status and response.
  CAF_REQUIRE(step([](storage::idempotency_repository& repo) {
    return repo.complete("user:u", "k1", 201, R"({"body":"{}"})", 3600);
  }));
  auto replay = claim("k1", fp, 3600);
  CAF_REQUIRE(replay);
  CAF_CHECK(replay->result == outcome::replay);
  CAF_CHECK_EQUAL(replay->status, 201);
  const auto kept = nlohmann::json::parse(replay->response, nullptr, false);
  CAF_CHECK_EQUAL(kept.value("body", std::string{}), "{}");
  // A 5xx releases the key: the next use runs again.
  CAF_REQUIRE(claim("k2", fp, 3600));
  CAF_REQUIRE(
    step([](storage::idempotency_repository& repo) { return repo.release("user:u", "k2"); }));
  auto rerun = claim("k2", fp, 3600);
  CAF_REQUIRE(rerun);
  CAF_CHECK(rerun->result == outcome::claimed);
  // An expired record is gone for the purge and overwritten by a new use.
  CAF_REQUIRE(claim("k3", fp, 0));
  CAF_REQUIRE(step([](storage::idempotency_repository& repo) {
    return repo.complete("user:u", "k3", 200, "{}", 0);
  }));
  auto purged = on_pool<std::uint64_t>(alpha_id, [](storage::pg_transaction& tx) {
    storage::idempotency_repository repo{tx};
    return repo.purge();
  });
  CAF_REQUIRE(purged);
  CAF_CHECK_EQUAL(*purged, 1u);
  auto fresh = claim("k3", fp, 3600);
  CAF_REQUIRE(fresh);
  CAF_CHECK(fresh->result == outcome::claimed);
}

CAF_TEST(usage counts add up per tenant and period) {
  auto add = [this](const char* tenant, std::string period, std::uint64_t n) {
    return on_pool<std::uint64_t>(std::string{tenant}, [period, n](storage::pg_transaction& tx) {
      storage::usage_repository repo{tx};
      return repo.add(period, n);
    });
  };
  CAF_CHECK_EQUAL(add(alpha_id, "2026-11", 5), 5u);
  CAF_CHECK_EQUAL(add(alpha_id, "2026-11", 7), 12u);
  CAF_CHECK_EQUAL(add(alpha_id, "2026-12", 1), 1u);
  CAF_CHECK_EQUAL(add(beta_id, "2026-11", 2), 2u); // beta's own row
  CAF_CHECK_EQUAL(add(alpha_id, "2026-11", 0), 12u);
  auto bytes = on_pool<std::uint64_t>(std::string{alpha_id}, [](storage::pg_transaction& tx) {
    storage::usage_repository repo{tx};
    return repo.storage_bytes();
  });
  CAF_REQUIRE(bytes);
  CAF_CHECK_GREATER(*bytes, 0u); // the fixture's user and session
}

CAF_TEST_FIXTURE_SCOPE_END()

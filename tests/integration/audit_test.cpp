#define CAF_SUITE storage.audit

#include "storage/audit.hpp"

#include "actors/directory/directory.hpp"
#include "actors/tenants/tenants_service.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "storage/db.hpp"

#include "tests/support/tenancy_fixture.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <set>

using namespace troupe;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr auto alpha = tests::alpha_id;
constexpr auto beta = tests::beta_id;

// The audit log on a real PostgreSQL: pool → tenants actor (loader) → directory → tenant
// actors holding the chain heads.
struct fixture : tests::tenancy_fixture {
  static protocol::audit_origin admin() {
    protocol::audit_origin o;
    o.actor_type = "admin";
    o.ip = "203.0.113.7";
    o.user_agent = "audit-test/1.0";
    o.request_id = "req-1";
    return o;
  }

  // Runs `body` as audited work on `tenant` through the directory and waits.
  caf::expected<protocol::audited_result> audited(
    const std::string& tenant, const std::string& action,
    std::function<caf::expected<std::any>(storage::pg_transaction&, protocol::audit_change&)> body,
    protocol::audit_origin origin = admin()) {
    protocol::audited_work work{std::move(origin), action, std::move(body)};
    caf::expected<protocol::audited_result> result{caf::error{}};
    self->request(dir, 20s, protocol::run_atom_v, tenant, std::move(work))
      .receive([&](protocol::audited_result& r) { result = std::move(r); },
               [&](caf::error& e) {
                 CAF_MESSAGE("audited work failed: " << protocol::describe(e) << " "
                                                     << caf::to_string(e.context()));
                 result = std::move(e);
               });
    return result;
  }

  // A body that records `after` on resource (type, id) and changes nothing else.
  static auto describe(json after, std::string type = "thing", std::string id = "t1") {
    return [after = std::move(after), type = std::move(type), id = std::move(id)](
             storage::pg_transaction&, protocol::audit_change& change) -> caf::expected<std::any> {
      change.resource_type = type;
      change.resource_id = id;
      change.after = after;
      return std::any{42};
    };
  }

  protocol::audit_verification verify(const std::string& tenant) {
    protocol::audit_verification result;
    result.ok = false;
    result.reason = "no answer";
    self->request(dir, 60s, protocol::verify_atom_v, tenant)
      .receive([&](protocol::audit_verification& v) { result = std::move(v); },
               [&](caf::error& e) { result.reason = protocol::describe(e); });
    return result;
  }

  // A unit of work on the pool as `tenant` (or the platform).

  std::vector<json> list(const std::string& tenant, protocol::audit_query q = {}) {
    auto page = on_pool<protocol::audit_page>(tenant, [this, q](storage::pg_transaction& tx) {
      storage::audit_repository repo{tx, *secrets};
      return repo.list(q);
    });
    CAF_REQUIRE(page);
    std::vector<json> out;
    for (const auto& text : page->data) {
      out.push_back(json::parse(text));
    }
    return out;
  }

  // Runs `sql` as the owner (who may tamper: the server's role may not).
  void as_owner(const std::string& sql) {
    auto owner = tests::connect(db.owner_conninfo());
    tests::run(*owner, sql);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(audit_integration, fixture)

CAF_TEST(audited work appends a gap free chain that verifies) {
  for (int i = 1; i <= 5; ++i) {
    auto r = audited(alpha, "thing.updated", describe({{"n", i}}));
    CAF_REQUIRE(r);
    CAF_CHECK_EQUAL(r->seq, static_cast<std::uint64_t>(i));
    CAF_CHECK_EQUAL(std::any_cast<int>(r->value), 42);
  }
  auto v = verify(alpha);
  CAF_CHECK(v.ok);
  CAF_CHECK_EQUAL(v.entries, 5u);
  CAF_CHECK_EQUAL(v.head_hash.size(), 64u);
  auto entries = list(alpha);
  CAF_REQUIRE_EQUAL(entries.size(), 5u);
  CAF_CHECK_EQUAL(entries[0]["seq"], 5); // newest first
  CAF_CHECK_EQUAL(entries[0]["prev_hash"], entries[1]["hash"]);
  CAF_CHECK_EQUAL(entries[4]["prev_hash"], std::string(64, '0'));
  CAF_CHECK_EQUAL(entries[0]["hash"], v.head_hash);
  CAF_CHECK_EQUAL(entries[0]["actor"]["type"], "admin");
  CAF_CHECK_EQUAL(entries[0]["ip"], "203.0.113.7");
  CAF_CHECK_EQUAL(entries[0]["user_agent"], "audit-test/1.0");
  CAF_CHECK_EQUAL(entries[0]["changes"]["after"]["n"], 5);
  CAF_CHECK(entries[0]["changes"]["before"].is_null());
  // Another tenant's chain is its own, and row-level security hides the first one from it.
  CAF_REQUIRE(audited(beta, "thing.updated", describe({{"n", 1}})));
  auto betas = list(beta);
  CAF_REQUIRE_EQUAL(betas.size(), 1u);
  CAF_CHECK_EQUAL(betas[0]["seq"], 1);
}

CAF_TEST(sixty four concurrent writers never fork the chain) {
  constexpr int writers = 64;
  int ok = 0;
  std::set<std::uint64_t> seqs;
  auto body = describe({{"w", 1}});
  for (int i = 0; i < writers; ++i) {
    self->send(dir, protocol::run_atom_v, std::string{alpha},
               protocol::audited_work{admin(), "thing.updated", body});
  }
  for (int i = 0; i < writers; ++i) {
    self->receive(
      [&](protocol::audited_result& r) {
        seqs.insert(r.seq);
        ++ok;
      },
      [&](caf::error& e) { CAF_FAIL("a writer failed: " << protocol::describe(e)); },
      caf::after(30s) >> [&] { CAF_FAIL("a writer got no answer"); });
  }
  CAF_CHECK_EQUAL(ok, writers);
  CAF_REQUIRE_EQUAL(seqs.size(), static_cast<std::size_t>(writers));
  CAF_CHECK_EQUAL(*seqs.begin(), 1u);
  CAF_CHECK_EQUAL(*seqs.rbegin(), static_cast<std::uint64_t>(writers));
  auto v = verify(alpha);
  CAF_CHECK(v.ok);
  CAF_CHECK_EQUAL(v.entries, static_cast<std::uint64_t>(writers));
  auto owner = tests::connect(db.owner_conninfo());
  CAF_CHECK_EQUAL(tests::query(*owner, "SELECT count(DISTINCT seq) || '/' || max(seq) FROM "
                                       "audit_log WHERE tenant_id = '"
                                         + std::string{alpha} + "'"),
                  "64/64");
}

CAF_TEST(a failed unit of work leaves neither its change nor its entry) {
  CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"n", 1}})));
  // The body changes a row, then fails: the change is rolled back with the entry.
  auto failed = audited(
    alpha, "tenant.updated",
    [](storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<std::any> {
      static constexpr storage::pg_statement rename{
        "test_rename", "UPDATE tenants SET name = 'Changed' WHERE id = $1"};
      auto r = tx.execute(rename, {*tx.tenant()});
      if (!r) {
        return std::move(r.error());
      }
      change.resource_type = "tenant";
      return caf::make_error(protocol::errc::conflict, "refused");
    });
  CAF_REQUIRE(!failed);
  CAF_CHECK(tests::errc_of(failed.error()) == protocol::errc::conflict);
  auto owner = tests::connect(db.owner_conninfo());
  CAF_CHECK_EQUAL(
    tests::query(*owner, std::string{"SELECT name FROM tenants WHERE id = '"} + alpha + "'"),
    "Alpha");
  CAF_CHECK_EQUAL(tests::query(*owner, "SELECT count(*) FROM audit_log"), "1");
  // A database error (here a unique violation) is the same; the chain continues at 2.
  auto broken
    = audited(alpha, "thing.created",
              [](storage::pg_transaction& tx, protocol::audit_change&) -> caf::expected<std::any> {
                static constexpr storage::pg_statement dup{
                  "test_dup", "INSERT INTO tenants (id, slug, name) VALUES "
                              "(gen_random_uuid(), 'beta', 'Dup')"};
                auto r = tx.execute(dup);
                if (!r) {
                  return std::move(r.error());
                }
                return std::any{0};
              });
  CAF_CHECK(!broken);
  auto next = audited(alpha, "thing.updated", describe({{"n", 2}}));
  CAF_REQUIRE(next);
  CAF_CHECK_EQUAL(next->seq, 2u);
  CAF_CHECK(verify(alpha).ok);
}

CAF_TEST(failures in a batch do not fail or reorder the others) {
  constexpr int writers = 40;
  for (int i = 0; i < writers; ++i) {
    if (i % 7 == 3) {
      self->send(dir, protocol::run_atom_v, std::string{alpha},
                 protocol::audited_work{admin(), "thing.updated",
                                        [](storage::pg_transaction&,
                                           protocol::audit_change&) -> caf::expected<std::any> {
                                          return caf::make_error(protocol::errc::not_found);
                                        }});
    } else {
      self->send(dir, protocol::run_atom_v, std::string{alpha},
                 protocol::audited_work{admin(), "thing.updated", describe({{"i", i}})});
    }
  }
  int ok = 0;
  int failed = 0;
  for (int i = 0; i < writers; ++i) {
    self->receive([&](protocol::audited_result&) { ++ok; },
                  [&](caf::error& e) {
                    CAF_CHECK(tests::errc_of(e) == protocol::errc::not_found);
                    ++failed;
                  },
                  caf::after(30s) >> [&] { CAF_FAIL("no answer"); });
  }
  CAF_CHECK_EQUAL(failed, 6);
  CAF_CHECK_EQUAL(ok, writers - 6);
  auto v = verify(alpha);
  CAF_CHECK(v.ok);
  CAF_CHECK_EQUAL(v.entries, static_cast<std::uint64_t>(writers - 6));
}

CAF_TEST(the server role cannot update or delete entries) {
  CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"n", 1}})));
  for (const auto* sql :
       {"UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log",
        "UPDATE audit_checkpoints SET seq = 0", "DELETE FROM audit_checkpoints",
        "INSERT INTO audit_checkpoints (tenant_id, seq, hash, signature) VALUES "
        "(troupe_current_tenant(), 1, '\\x00', '\\x00')"}) {
    auto r
      = on_pool<int>(std::string{alpha}, [sql](storage::pg_transaction& tx) -> caf::expected<int> {
          storage::pg_statement st{"test_tamper", sql};
          auto rows = tx.execute(st);
          if (!rows) {
            return std::move(rows.error());
          }
          return 0;
        });
    CAF_CHECK(!r);
    if (!r) {
      CAF_CHECK_EQUAL(tests::sqlstate_of(r.error()), "42501"); // insufficient_privilege
    }
  }
  CAF_CHECK(verify(alpha).ok);
}

CAF_TEST(verify finds an edited a deleted and a reordered entry) {
  for (int i = 1; i <= 6; ++i) {
    CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"n", i}})));
  }
  CAF_REQUIRE(verify(alpha).ok);
  // Edited text: the hash no longer matches.
  as_owner("UPDATE audit_log SET entry = replace(entry, '\"n\":3', '\"n\":33') WHERE seq = 3");
  auto edited = verify(alpha);
  CAF_CHECK(!edited.ok);
  CAF_CHECK_EQUAL(edited.first_bad_seq, 3u);
  as_owner("UPDATE audit_log SET entry = replace(entry, '\"n\":33', '\"n\":3') WHERE seq = 3");
  CAF_CHECK(verify(alpha).ok);
  // An indexed column changed (what filters see) but not the hashed text.
  as_owner("UPDATE audit_log SET action = 'thing.viewed' WHERE seq = 4");
  auto column = verify(alpha);
  CAF_CHECK(!column.ok);
  CAF_CHECK_EQUAL(column.first_bad_seq, 4u);
  as_owner("UPDATE audit_log SET action = 'thing.updated' WHERE seq = 4");
  // Reordered: entries 2 and 5 swap places.
  as_owner("UPDATE audit_log SET seq = seq + 1000 WHERE seq IN (2, 5)");
  as_owner("UPDATE audit_log SET seq = 5 WHERE seq = 1002");
  as_owner("UPDATE audit_log SET seq = 2 WHERE seq = 1005");
  auto reordered = verify(alpha);
  CAF_CHECK(!reordered.ok);
  CAF_CHECK_EQUAL(reordered.first_bad_seq, 2u);
  as_owner("UPDATE audit_log SET seq = seq + 1000 WHERE seq IN (2, 5)");
  as_owner("UPDATE audit_log SET seq = 5 WHERE seq = 1002");
  as_owner("UPDATE audit_log SET seq = 2 WHERE seq = 1005");
  CAF_CHECK(verify(alpha).ok);
  // Deleted in the middle, and then at the end (the tenant actor knows the head).
  as_owner("DELETE FROM audit_log WHERE seq = 4");
  auto deleted = verify(alpha);
  CAF_CHECK(!deleted.ok);
  CAF_CHECK_EQUAL(deleted.first_bad_seq, 4u);
}

CAF_TEST(deleting the newest entry is found) {
  for (int i = 1; i <= 3; ++i) {
    CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"n", i}})));
  }
  as_owner("DELETE FROM audit_log WHERE seq = 3");
  auto v = verify(alpha);
  CAF_CHECK(!v.ok);
  CAF_CHECK_EQUAL(v.first_bad_seq, 3u);
}

CAF_TEST(secrets are redacted and personal data is sealed) {
  json after{{"email", "ann@example.com"},
             {"display_name", "Ann Smith"},
             {"password", "hunter2-secret"},
             {"password_hash", "$argon2id$v=19$abc"},
             {"api_key", "trp_abcdef"},
             {"totp_secret", "JBSWY3DPEHPK3PXP"},
             {"nested", {{"refresh_token", "rt-123"}, {"plan", "pro"}}}};
  auto r = audited(alpha, "user.created", describe(after, "user", "u-1"));
  CAF_REQUIRE(r);
  auto owner = tests::connect(db.owner_conninfo());
  const auto stored = tests::query(*owner, "SELECT entry FROM audit_log WHERE seq = 1");
  for (const auto* secret :
       {"hunter2-secret", "$argon2id$", "trp_abcdef", "JBSWY3DPEHPK3PXP", "rt-123",
        "ann@example.com", "Ann Smith", "203.0.113.7", "audit-test/1.0"}) {
    CAF_CHECK_EQUAL(stored.find(secret), std::string::npos);
  }
  auto entry = list(alpha).at(0);
  const auto& a = entry["changes"]["after"];
  CAF_CHECK_EQUAL(a["password"], "[redacted]");
  CAF_CHECK_EQUAL(a["password_hash"], "[redacted]");
  CAF_CHECK_EQUAL(a["api_key"], "[redacted]");
  CAF_CHECK_EQUAL(a["totp_secret"], "[redacted]");
  CAF_CHECK_EQUAL(a["nested"]["refresh_token"], "[redacted]");
  CAF_CHECK_EQUAL(a["nested"]["plan"], "pro");
  CAF_CHECK_EQUAL(a["email"], "ann@example.com"); // decrypted for readers
  CAF_CHECK_EQUAL(a["display_name"], "Ann Smith");
  CAF_CHECK_EQUAL(entry["ip"], "203.0.113.7");
}

CAF_TEST(destroying a data key erases personal data and verify still passes) {
  protocol::audit_origin as_user = admin();
  as_user.actor_type = "user";
  as_user.actor_id = "u-1";
  CAF_REQUIRE(audited(alpha, "user.updated",
                      describe({{"email", "ann@example.com"}, {"plan", "pro"}}, "user", "u-1"),
                      as_user));
  CAF_REQUIRE(audited(alpha, "user.updated",
                      describe({{"email", "bob@example.com"}}, "user", "u-2"), admin()));
  auto before = list(alpha);
  CAF_REQUIRE_EQUAL(before.size(), 2u);
  CAF_CHECK_EQUAL(before[1]["changes"]["after"]["email"], "ann@example.com");
  auto destroyed = on_pool<bool>(std::string{alpha}, [this](storage::pg_transaction& tx) {
    storage::audit_repository repo{tx, *secrets};
    return repo.destroy_key("u-1");
  });
  CAF_REQUIRE(destroyed);
  CAF_CHECK(*destroyed);
  auto after = list(alpha);
  // u-1's email and their own IP and user agent are gone; the rest is untouched.
  CAF_CHECK_EQUAL(after[1]["changes"]["after"]["email"], "[erased]");
  CAF_CHECK_EQUAL(after[1]["ip"], "[erased]");
  CAF_CHECK_EQUAL(after[1]["user_agent"], "[erased]");
  CAF_CHECK_EQUAL(after[1]["changes"]["after"]["plan"], "pro");
  CAF_CHECK_EQUAL(after[1]["hash"], before[1]["hash"]);
  CAF_CHECK_EQUAL(after[0]["changes"]["after"]["email"], "bob@example.com");
  CAF_CHECK_EQUAL(after[0]["ip"], "203.0.113.7"); // the admin's, under the tenant key
  auto v = verify(alpha);
  CAF_CHECK(v.ok);
  CAF_CHECK_EQUAL(v.entries, 2u);
}

CAF_TEST(list filters and pages) {
  for (int i = 1; i <= 7; ++i) {
    CAF_REQUIRE(audited(alpha, i % 2 == 0 ? "auth.login" : "thing.updated",
                        describe({{"i", i}}, "thing", i <= 3 ? "a" : "b")));
  }
  protocol::audit_query q;
  q.limit = 3;
  auto page
    = on_pool<protocol::audit_page>(std::string{alpha}, [this, q](storage::pg_transaction& tx) {
        storage::audit_repository repo{tx, *secrets};
        return repo.list(q);
      });
  CAF_REQUIRE(page);
  CAF_CHECK_EQUAL(page->data.size(), 3u);
  CAF_CHECK_EQUAL(page->next_cursor, 5u);
  q.cursor = page->next_cursor;
  q.limit = 10;
  auto rest = list(alpha, q);
  CAF_REQUIRE_EQUAL(rest.size(), 4u);
  CAF_CHECK_EQUAL(rest[0]["seq"], 4);
  protocol::audit_query by_action;
  by_action.action = "auth.*";
  CAF_CHECK_EQUAL(list(alpha, by_action).size(), 3u);
  protocol::audit_query by_resource;
  by_resource.resource_type = "thing";
  by_resource.resource_id = "a";
  CAF_CHECK_EQUAL(list(alpha, by_resource).size(), 3u);
  protocol::audit_query oldest;
  oldest.oldest_first = true;
  oldest.limit = 2;
  auto first = list(alpha, oldest);
  CAF_REQUIRE_EQUAL(first.size(), 2u);
  CAF_CHECK_EQUAL(first[0]["seq"], 1);
  protocol::audit_query future;
  future.from = "2999-01-01T00:00:00Z";
  CAF_CHECK_EQUAL(list(alpha, future).size(), 0u);
}

CAF_TEST(retention prunes a prefix and leaves a signed checkpoint) {
  for (int i = 1; i <= 4; ++i) {
    CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"i", i}})));
  }
  std::this_thread::sleep_for(20ms);
  auto owner = tests::connect(db.owner_conninfo());
  const auto cutoff = tests::query(*owner, "SELECT to_char(now() AT TIME ZONE 'UTC', "
                                           "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')");
  std::this_thread::sleep_for(20ms);
  for (int i = 5; i <= 6; ++i) {
    CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"i", i}})));
  }
  auto removed = storage::prune_audit(*owner, *secrets, cutoff);
  CAF_REQUIRE(removed);
  CAF_CHECK_EQUAL(removed->removed, 4u);
  CAF_CHECK_EQUAL(removed->chains, 1u);
  CAF_CHECK_EQUAL(removed->failed, 0u);
  CAF_CHECK_EQUAL(tests::query(*owner, "SELECT seq FROM audit_checkpoints"), "4");
  auto v = verify(alpha);
  CAF_CHECK(v.ok);
  CAF_CHECK_EQUAL(v.entries, 2u);
  // The chain goes on after the checkpoint.
  auto next = audited(alpha, "thing.updated", describe({{"i", 7}}));
  CAF_REQUIRE(next);
  CAF_CHECK_EQUAL(next->seq, 7u);
  // A forged checkpoint (say, to hide more deletions) fails verification.
  tests::run(*owner, "UPDATE audit_checkpoints SET seq = 5");
  tests::run(*owner, "DELETE FROM audit_log WHERE seq = 5");
  auto forged = verify(alpha);
  CAF_CHECK(!forged.ok);
  CAF_CHECK_EQUAL(forged.first_bad_seq, 5u);
}

CAF_TEST(pruning everything keeps the head in the checkpoint) {
  for (int i = 1; i <= 3; ++i) {
    CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"i", i}})));
  }
  auto owner = tests::connect(db.owner_conninfo());
  auto removed = storage::prune_audit(*owner, *secrets, "2999-01-01T00:00:00Z");
  CAF_REQUIRE(removed);
  CAF_CHECK_EQUAL(removed->removed, 3u);
  // A fresh tenant actor (passivated, then reloaded) finds the head in the checkpoint.
  anon_send(dir, protocol::invalidate_atom_v, std::string{alpha});
  auto next = audited(alpha, "thing.updated", describe({{"i", 4}}));
  CAF_REQUIRE(next);
  CAF_CHECK_EQUAL(next->seq, 4u);
  auto v = verify(alpha);
  CAF_CHECK(v.ok);
  CAF_CHECK_EQUAL(v.entries, 1u);
}

CAF_TEST(a chain that does not verify is not pruned and the others are) {
  for (int i = 1; i <= 3; ++i) {
    CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"i", i}})));
    CAF_REQUIRE(audited(beta, "thing.updated", describe({{"i", i}})));
  }
  as_owner(std::string{"UPDATE audit_log SET entry = replace(entry, '\"i\":2', '\"i\":9') "
                       "WHERE tenant_id = '"}
           + alpha + "' AND seq = 2");
  auto owner = tests::connect(db.owner_conninfo());
  auto report = storage::prune_audit(*owner, *secrets, "2999-01-01T00:00:00Z");
  CAF_REQUIRE(report);
  CAF_CHECK_EQUAL(report->removed, 3u);
  CAF_CHECK_EQUAL(report->chains, 1u);
  CAF_CHECK_EQUAL(report->failed, 1u);
  CAF_CHECK_EQUAL(tests::query(*owner, std::string{"SELECT count(*) FROM audit_log WHERE "
                                                   "tenant_id = '"}
                                         + alpha + "'"),
                  "3");
  CAF_CHECK(!verify(alpha).ok);
  CAF_CHECK(verify(beta).ok);
}

CAF_TEST(a restarted tenant actor reloads its head) {
  CAF_REQUIRE(audited(alpha, "thing.updated", describe({{"i", 1}})));
  anon_send(dir, protocol::invalidate_atom_v, std::string{alpha});
  auto next = audited(alpha, "thing.updated", describe({{"i", 2}}));
  CAF_REQUIRE(next);
  CAF_CHECK_EQUAL(next->seq, 2u);
  CAF_CHECK(verify(alpha).ok);
}

CAF_TEST_FIXTURE_SCOPE_END()

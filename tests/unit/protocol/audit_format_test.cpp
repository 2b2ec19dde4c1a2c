#define CAF_SUITE storage.audit_format

#include "storage/audit_format.hpp"

#include "protocol/crypto.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe;
using namespace troupe::storage::audit_format;

namespace {

entry_input plain_input() {
  entry_input in;
  in.tenant_id = "0190a3c4-0000-7000-8000-00000000000a";
  in.id = "0190a3c4-0000-7000-8000-0000000000e1";
  in.at = "2026-01-02T03:04:05.678Z";
  in.origin.actor_type = "system";
  in.change.action = "job.created";
  in.change.resource_type = "job";
  in.change.resource_id = "j1";
  return in;
}

data_key no_key(const std::string&) {
  CAF_FAIL("no key should be needed");
  return {};
}

} // namespace

CAF_TEST(the canonical entry is compact json with sorted keys) {
  const auto sealed = seal_entry(plain_input(), 7, genesis_hash(), no_key);
  CAF_CHECK_EQUAL(sealed.canonical,
                  R"({"action":"job.created","actor":{"id":null,"type":"system"},)"
                  R"("at":"2026-01-02T03:04:05.678Z","changes":null,"encrypted":[],)"
                  R"("id":"0190a3c4-0000-7000-8000-0000000000e1","ip":null,"outcome":"success",)"
                  R"("request_id":null,"resource":{"id":"j1","type":"job"},"seq":7,)"
                  R"("tenant_id":"0190a3c4-0000-7000-8000-00000000000a","user_agent":null,"v":1})");
  CAF_CHECK_EQUAL(sealed.seq, 7u);
  CAF_CHECK_EQUAL(sealed.prev_hash, genesis_hash());
  CAF_CHECK_EQUAL(sealed.hash, protocol::crypto::sha256(genesis_hash() + sealed.canonical));
  // The chain: the next entry's hash covers this one's.
  const auto next = seal_entry(plain_input(), 8, sealed.hash, no_key);
  CAF_CHECK_EQUAL(next.hash, chain_hash(sealed.hash, next.canonical));
  CAF_CHECK_NOT_EQUAL(next.hash, sealed.hash);
}

CAF_TEST(secret fields are recognised by name) {
  for (const auto* name :
       {"password", "new_password", "password_hash", "token", "refresh_token", "secret",
        "client_secret", "api_key", "apiKey", "totp_secret", "recovery_codes", "key_hash",
        "private_key", "Authorization", "signing_key", "mfa_code", "hash"}) {
    CAF_MESSAGE(name);
    CAF_CHECK(is_secret_field(name));
  }
  for (const auto* name : {"email", "name", "plan", "status", "roles", "created_at", "url"}) {
    CAF_MESSAGE(name);
    CAF_CHECK(!is_secret_field(name));
  }
}

CAF_TEST(personal fields are recognised by name and resource) {
  const std::vector<std::string> none;
  for (const auto* name : {"email", "owner_email", "display_name", "first_name", "phone", "ip"}) {
    CAF_MESSAGE(name);
    CAF_CHECK(is_personal_field(name, "tenant", none));
  }
  CAF_CHECK(is_personal_field("name", "user", none));
  CAF_CHECK(!is_personal_field("name", "tenant", none));
  CAF_CHECK(!is_personal_field("plan", "user", none));
  CAF_CHECK(is_personal_field("address", "customer", {"address"}));
}

CAF_TEST(redaction replaces secrets at any depth and keeps the field names) {
  nlohmann::json value = {{"email", "a@b.c"},
                          {"password", "pw"},
                          {"nested", {{"token", "t"}, {"keep", 1}}},
                          {"list", {{{"secret", "s"}}, 2}}};
  const auto r = redact(value);
  CAF_CHECK_EQUAL(r["password"], "[redacted]");
  CAF_CHECK_EQUAL(r["nested"]["token"], "[redacted]");
  CAF_CHECK_EQUAL(r["nested"]["keep"], 1);
  CAF_CHECK_EQUAL(r["list"][0]["secret"], "[redacted]");
  CAF_CHECK_EQUAL(r["list"][1], 2);
  CAF_CHECK_EQUAL(r["email"], "a@b.c"); // personal, not secret: sealed, not redacted
}

CAF_TEST(personal data is sealed under the subjects keys and opens only with them) {
  auto in = plain_input();
  in.origin.actor_type = "user";
  in.origin.actor_id = "u-actor";
  in.origin.ip = "198.51.100.4";
  in.change.resource_type = "user";
  in.change.resource_id = "u-subject";
  in.change.after = {{"email", "ann@example.com"}, {"name", "Ann"}, {"password", "pw"}};
  const std::map<std::string, data_key> keys{
    {"u-actor", {"k-actor", protocol::crypto::random_bytes(32)}},
    {"u-subject", {"k-subject", protocol::crypto::random_bytes(32)}}};
  const auto sealed = seal_entry(in, 1, genesis_hash(),
                                 [&](const std::string& subject) { return keys.at(subject); });
  for (const auto* plain : {"ann@example.com", "\"Ann\"", "198.51.100.4", "\"pw\""}) {
    CAF_CHECK_EQUAL(sealed.canonical.find(plain), std::string::npos);
  }
  const auto canonical = nlohmann::json::parse(sealed.canonical);
  CAF_CHECK_EQUAL(canonical["encrypted"].size(), 3u);
  CAF_CHECK_EQUAL(canonical["changes"]["after"]["password"], "[redacted]");
  auto ids = key_ids(canonical);
  std::sort(ids.begin(), ids.end());
  CAF_CHECK_EQUAL(ids, (std::vector<std::string>{"k-actor", "k-subject"}));
  const key_lookup all = [&](const std::string& id) -> std::optional<std::optional<std::string>> {
    for (const auto& [subject, k] : keys) {
      if (k.id == id) {
        return std::optional<std::string>{k.key};
      }
    }
    return std::nullopt;
  };
  auto opened = render(canonical, sealed.prev_hash, sealed.hash, all);
  CAF_CHECK_EQUAL(opened["ip"], "198.51.100.4");
  CAF_CHECK_EQUAL(opened["changes"]["after"]["email"], "ann@example.com");
  CAF_CHECK_EQUAL(opened["changes"]["after"]["name"], "Ann");
  CAF_CHECK_EQUAL(opened["hash"], protocol::crypto::hex(sealed.hash));
  CAF_CHECK(!opened.contains("encrypted"));
  CAF_CHECK(!opened.contains("tenant_id"));
  // The subject's key destroyed: their fields read "[erased]", the actor's IP still opens.
  const key_lookup erased
    = [&](const std::string& id) -> std::optional<std::optional<std::string>> {
    if (id == "k-subject") {
      return std::optional<std::string>{};
    }
    return all(id);
  };
  auto shredded = render(canonical, sealed.prev_hash, sealed.hash, erased);
  CAF_CHECK_EQUAL(shredded["changes"]["after"]["email"], "[erased]");
  CAF_CHECK_EQUAL(shredded["ip"], "198.51.100.4");
  // A ciphertext moved to another entry does not open (it is bound to its entry and place).
  auto moved = canonical;
  moved["id"] = "0190a3c4-0000-7000-8000-0000000000e2";
  auto wrong = render(moved, sealed.prev_hash, sealed.hash, all);
  CAF_CHECK_EQUAL(wrong["ip"], "[unavailable]");
}

CAF_TEST(a subject whose key is destroyed gets no new personal data) {
  auto in = plain_input();
  in.origin.ip = "198.51.100.4";
  const auto sealed = seal_entry(in, 1, genesis_hash(), [](const std::string& subject) {
    return data_key{"k-" + subject, ""}; // destroyed
  });
  CAF_CHECK_NOT_EQUAL(sealed.canonical.find(R"("ip":"[erased]")"), std::string::npos);
}

CAF_TEST(data keys are wrapped for one tenant and subject) {
  const auto wrap = protocol::crypto::random_bytes(32);
  const auto key = protocol::crypto::random_bytes(32);
  const auto wrapped = wrap_key(wrap, "t1", "u1", key);
  CAF_CHECK_EQUAL(unwrap_key(wrap, "t1", "u1", wrapped).value_or(""), key);
  CAF_CHECK(!unwrap_key(wrap, "t2", "u1", wrapped));
  CAF_CHECK(!unwrap_key(wrap, "t1", "u2", wrapped));
}

#define CAF_SUITE actors.key_ring

#include "actors/auth/key_ring.hpp"

#include "storage/auth.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe;

namespace {

constexpr std::int64_t day = 86400;
constexpr std::int64_t rotation = 30 * day;
constexpr std::int64_t ttl = 900;

storage::signing_key_row key(std::string kid, std::int64_t created,
                             std::optional<std::int64_t> retired = std::nullopt) {
  storage::signing_key_row k;
  k.kid = std::move(kid);
  k.created_at = created;
  k.retired_at = retired;
  return k;
}

} // namespace

CAF_TEST(without keys one is generated) {
  auto plan = actors::plan_keys({}, 1000, rotation, ttl);
  CAF_CHECK(plan.generate);
  CAF_CHECK(plan.valid.empty());
}

CAF_TEST(the newest key signs until it is due for rotation) {
  const std::int64_t t = 100 * day;
  auto plan = actors::plan_keys({key("a", t)}, t + rotation - 1, rotation, ttl);
  CAF_CHECK(!plan.generate);
  CAF_CHECK_EQUAL(plan.signer, "a");
  CAF_CHECK_EQUAL(plan.valid, std::vector<std::string>{"a"});
  plan = actors::plan_keys({key("a", t)}, t + rotation, rotation, ttl);
  CAF_CHECK(plan.generate);
  // While the new key is made, the old one still verifies what it signed.
  CAF_CHECK_EQUAL(plan.valid, std::vector<std::string>{"a"});
}

CAF_TEST(a retired key verifies until its last token expired) {
  const std::int64_t t = 100 * day;
  const std::int64_t rotated = t + rotation;
  std::vector<storage::signing_key_row> keys{key("old", t, rotated), key("new", rotated)};
  auto plan = actors::plan_keys(keys, rotated + ttl + 59, rotation, ttl);
  CAF_CHECK_EQUAL(plan.signer, "new");
  CAF_CHECK_EQUAL(plan.valid, (std::vector<std::string>{"new", "old"}));
  plan = actors::plan_keys(keys, rotated + ttl + 60, rotation, ttl);
  CAF_CHECK_EQUAL(plan.valid, std::vector<std::string>{"new"});
}

CAF_TEST(two unretired keys sign with the newest and keep the other) {
  // Another node's rotation committed the new key but this node has not retired the old one.
  const std::int64_t t = 100 * day;
  auto plan = actors::plan_keys({key("a", t), key("b", t + 10)}, t + 20, rotation, ttl);
  CAF_CHECK_EQUAL(plan.signer, "b");
  CAF_CHECK_EQUAL(plan.valid, (std::vector<std::string>{"b", "a"}));
}

CAF_TEST(a key id is 22 base64url characters of the public key digest) {
  const auto a = actors::key_id(std::string(32, 'a'));
  CAF_CHECK_EQUAL(a.size(), 22u);
  CAF_CHECK_NOT_EQUAL(a, actors::key_id(std::string(32, 'b')));
  CAF_CHECK_EQUAL(a, actors::key_id(std::string(32, 'a')));
}

#define CAF_SUITE protocol.principal

#include "protocol/principal.hpp"

#include "protocol/request_id.hpp"

#include <caf/test/unit_test.hpp>

#include <algorithm>

using namespace troupe::protocol;

namespace {

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

} // namespace

CAF_TEST(wildcards cover what they name and nothing else) {
  CAF_CHECK(permits({"*"}, "audit:read"));
  CAF_CHECK(permits({"records:*"}, "records:read"));
  CAF_CHECK(permits({"records:*"}, "records:*"));
  CAF_CHECK(!permits({"records:*"}, "roles:read"));
  CAF_CHECK(!permits({"records:*"}, "*"));
  CAF_CHECK(!permits({"records:read"}, "records:*"));
  CAF_CHECK(!permits({"rec:*"}, "records:read"));
  CAF_CHECK(permits({"audit:read"}, "audit:read"));
  CAF_CHECK(!permits({}, "audit:read"));
}

CAF_TEST(the built in roles grant what api md says) {
  CAF_CHECK_EQUAL(builtin_permissions({"owner"}), std::vector<std::string>{"*"});
  const auto admin = builtin_permissions({"admin"});
  CAF_CHECK(!permits(admin, "tenant:admin"));
  CAF_CHECK(permits(admin, "audit:read"));
  CAF_CHECK_EQUAL(admin.size(), permission_catalogue().size() - 1);
  const auto member = builtin_permissions({"member"});
  CAF_CHECK_EQUAL(member, (std::vector<std::string>{"events:publish", "functions:invoke",
                                                    "jobs:read", "records:*", "users:read"}));
  const auto viewer = builtin_permissions({"viewer"});
  CAF_CHECK(permits(viewer, "users:read"));
  CAF_CHECK(permits(viewer, "webhooks:read"));
  CAF_CHECK(!permits(viewer, "audit:read"));
  CAF_CHECK(!permits(viewer, "users:write"));
  CAF_CHECK(builtin_permissions({"nobody"}).empty());
  // Roles add up without duplicates.
  const auto both = builtin_permissions({"member", "viewer"});
  CAF_CHECK(has(both, "records:*") && has(both, "roles:read"));
  CAF_CHECK_EQUAL(std::count(both.begin(), both.end(), "users:read"), 1);
}

CAF_TEST(an opaque token carries its tenant and id) {
  const auto tenant = new_uuid_v7();
  const auto id = new_uuid_v7();
  const auto token = make_opaque_token(tenant, id);
  CAF_CHECK_EQUAL(token.size(), 86u);
  auto ids = opaque_token_ids(token);
  CAF_REQUIRE(ids);
  CAF_CHECK_EQUAL(ids->first, tenant);
  CAF_CHECK_EQUAL(ids->second, id);
  CAF_CHECK_NOT_EQUAL(token, make_opaque_token(tenant, id)); // 32 random bytes each
  CAF_CHECK(!opaque_token_ids(token.substr(1)));
  CAF_CHECK(!opaque_token_ids(std::string(86, 'x')));
  CAF_CHECK(!opaque_token_ids(token.substr(0, 85) + "!"));
}

CAF_TEST(holding every permission of a resource is holding its wildcard) {
  const auto admin = builtin_permissions({"admin"});
  CAF_CHECK(permits(admin, "records:*"));
  CAF_CHECK(permits(admin, "users:*"));
  CAF_CHECK(!permits(admin, "tenant:*"));
  CAF_CHECK(!permits(admin, "*"));
  CAF_CHECK(!permits({"records:read"}, "records:*"));
  CAF_CHECK(permits({"records:read", "records:write"}, "records:*"));
}

CAF_TEST(custom roles inherit transitively and cycles are found) {
  role_catalog custom{{"auditor", {{"audit:read"}, {"viewer"}}},
                      {"lead", {{"users:write"}, {"auditor"}}},
                      {"loop", {{"jobs:write"}, {"loop2"}}},
                      {"loop2", {{}, {"loop"}}}};
  const auto lead = effective_permissions({"lead"}, custom);
  CAF_CHECK(permits(lead, "users:write"));
  CAF_CHECK(permits(lead, "audit:read"));
  CAF_CHECK(permits(lead, "webhooks:read")); // viewer, two levels up
  CAF_CHECK(!permits(lead, "roles:write"));
  // A stored cycle (never written by the API) still terminates.
  CAF_CHECK(permits(effective_permissions({"loop"}, custom), "jobs:write"));
  CAF_CHECK(effective_permissions({"nobody"}, custom).empty());
  CAF_CHECK(inherits_cycle("auditor", {"lead"}, custom));
  CAF_CHECK(inherits_cycle("x", {"x"}, custom));
  CAF_CHECK(!inherits_cycle("x", {"lead", "viewer"}, custom));
  CAF_CHECK(is_builtin_role("owner") && !is_builtin_role("auditor"));
  CAF_CHECK(valid_permission("records:*") && valid_permission("*"));
  CAF_CHECK(!valid_permission("records:delete") && !valid_permission("nope:*"));
}

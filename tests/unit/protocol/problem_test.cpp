#define CAF_SUITE protocol.problem

#include "protocol/problem.hpp"

#include "protocol/error.hpp"
#include "protocol/request_id.hpp"

#include <caf/sec.hpp>
#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <set>

using namespace troupe::protocol;

CAF_TEST(a problem renders every member of the contract) {
  problem p;
  p.code = errc::validation_failed;
  p.detail = "password too short";
  p.instance = "/v1/auth/signup";
  p.request_id = "req-1";
  p.errors.push_back({"/password", "must be at least 10 characters"});
  auto body = nlohmann::json::parse(render_problem(p));
  CAF_CHECK_EQUAL(body["type"], "/problems/validation-failed");
  CAF_CHECK_EQUAL(body["code"], "validation-failed");
  CAF_CHECK_EQUAL(body["title"], "Request body is invalid");
  CAF_CHECK_EQUAL(body["status"], 400);
  CAF_CHECK_EQUAL(body["detail"], "password too short");
  CAF_CHECK_EQUAL(body["instance"], "/v1/auth/signup");
  CAF_CHECK_EQUAL(body["request_id"], "req-1");
  CAF_REQUIRE_EQUAL(body["errors"].size(), 1u);
  CAF_CHECK_EQUAL(body["errors"][0]["pointer"], "/password");
  CAF_CHECK_EQUAL(body["errors"][0]["message"], "must be at least 10 characters");
}

CAF_TEST(optional members are left out when empty) {
  problem p;
  p.code = errc::not_found;
  p.instance = "/x";
  p.request_id = "r";
  auto body = nlohmann::json::parse(render_problem(p));
  CAF_CHECK(!body.contains("detail"));
  CAF_CHECK(!body.contains("errors"));
  CAF_CHECK_EQUAL(body.size(), 6u);
}

CAF_TEST(extensions become top level members) {
  problem p;
  p.code = errc::forbidden;
  p.extensions.emplace_back("required_permission", "users:write");
  auto body = nlohmann::json::parse(render_problem(p));
  CAF_CHECK_EQUAL(body["required_permission"], "users:write");
  CAF_CHECK_EQUAL(body["status"], 403);
}

CAF_TEST(invalid utf8 from a client does not break rendering) {
  problem p;
  p.code = errc::not_found;
  p.instance = std::string{"/\xff\xfe"};
  auto text = render_problem(p);
  CAF_CHECK(nlohmann::json::accept(text));
}

CAF_TEST(the catalogue has every api code once with a matching status) {
  const std::map<std::string, int> expected{{"bad-request", 400},
                                            {"validation-failed", 400},
                                            {"unauthenticated", 401},
                                            {"invalid-credentials", 401},
                                            {"token-expired", 401},
                                            {"token-revoked", 401},
                                            {"invalid-mfa-code", 401},
                                            {"forbidden", 403},
                                            {"tenant-mismatch", 403},
                                            {"tenant-suspended", 403},
                                            {"not-found", 404},
                                            {"method-not-allowed", 405},
                                            {"conflict", 409},
                                            {"precondition-failed", 412},
                                            {"rate-limited", 429},
                                            {"quota-exceeded", 429},
                                            {"idempotency-in-flight", 409},
                                            {"idempotency-key-reuse", 422},
                                            {"payload-too-large", 413},
                                            {"unsupported-media-type", 415},
                                            {"service-unavailable", 503},
                                            {"internal", 500},
                                            {"header-fields-too-large", 431}};
  std::set<std::string> seen;
  for (const auto& entry : catalogue()) {
    const std::string name{entry.name};
    CAF_CHECK(seen.insert(name).second);
    CAF_REQUIRE(expected.count(name) == 1);
    CAF_CHECK_EQUAL(entry.status, expected.at(name));
    CAF_CHECK(!entry.title.empty());
    CAF_CHECK(!entry.description.empty());
    CAF_CHECK(&info(entry.code) == &entry);
    CAF_CHECK(errc_from_name(name) == entry.code);
  }
  CAF_CHECK_EQUAL(seen.size(), expected.size());
  CAF_CHECK(!errc_from_name("teapot"));
}

CAF_TEST(caf errors map to the problem a client should see) {
  CAF_CHECK(to_errc(caf::make_error(errc::conflict)) == errc::conflict);
  CAF_CHECK(to_errc(caf::make_error(caf::sec::request_timeout)) == errc::service_unavailable);
  CAF_CHECK(to_errc(caf::make_error(caf::sec::request_receiver_down)) == errc::service_unavailable);
  CAF_CHECK(to_errc(caf::make_error(caf::sec::runtime_error)) == errc::internal);
  CAF_CHECK_EQUAL(describe(caf::make_error(errc::not_found)), "troupe:not-found");
  CAF_CHECK_EQUAL(describe(caf::make_error(caf::sec::request_timeout)), "system:request_timeout");
}

CAF_TEST(client request ids are accepted only in the documented alphabet) {
  CAF_CHECK(valid_request_id("abc-DEF_0.9"));
  CAF_CHECK(valid_request_id(std::string(128, 'a')));
  CAF_CHECK(!valid_request_id(std::string(129, 'a')));
  CAF_CHECK(!valid_request_id(""));
  CAF_CHECK(!valid_request_id("a b"));
  CAF_CHECK(!valid_request_id("a/b"));
  CAF_CHECK(!valid_request_id("\xc3\xa9"));
}

CAF_TEST(new request ids are distinct uuid v7 strings in time order) {
  std::set<std::string> ids;
  std::string previous;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_request_id();
    CAF_REQUIRE_EQUAL(id.size(), 36u);
    CAF_CHECK_EQUAL(id[14], '7');
    CAF_CHECK(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
    CAF_CHECK(valid_request_id(id));
    CAF_CHECK(id.substr(0, 13) >= previous.substr(0, std::min<std::size_t>(13, previous.size())));
    previous = id;
    ids.insert(std::move(id));
  }
  CAF_CHECK_EQUAL(ids.size(), 1000u);
}

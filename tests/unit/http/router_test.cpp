#define CAF_SUITE http.router

#include "http/router.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::http;
using outcome = route_match::outcome;

namespace {

handler_fn noop() {
  return [](const request&, const request_context&, reply_fn) {
  };
}

router sample() {
  router r;
  r.add({verb::get, "/healthz", noop(), ""});
  r.add({verb::get, "/v1/users/{id}", noop(), ""});
  r.add({verb::patch, "/v1/users/{id}", noop(), ""});
  r.add({verb::get, "/v1/users/me", noop(), ""});
  r.add({verb::del, "/v1/users/{id}", noop(), ""});
  r.add({verb::post, "/v1/users/{id}/roles/{role}", noop(), ""});
  r.add({verb::get, "/", noop(), ""});
  return r;
}

} // namespace

CAF_TEST(a literal path matches its route) {
  auto r = sample();
  auto m = r.match(verb::get, "/healthz");
  CAF_REQUIRE(m.result == outcome::found);
  CAF_CHECK_EQUAL(m.path_template, "/healthz");
  CAF_CHECK(m.params.empty());
}

CAF_TEST(path parameters are extracted and percent decoded) {
  auto r = sample();
  auto m = r.match(verb::post, "/v1/users/a%20b/roles/r%2Fx");
  CAF_REQUIRE(m.result == outcome::found);
  CAF_CHECK_EQUAL(m.path_template, "/v1/users/{id}/roles/{role}");
  CAF_REQUIRE_EQUAL(m.params.size(), 2u);
  CAF_CHECK_EQUAL(m.params[0].first, "id");
  CAF_CHECK_EQUAL(m.params[0].second, "a b");
  CAF_CHECK_EQUAL(m.params[1].second, "r/x");
}

CAF_TEST(a literal segment beats a parameter) {
  auto r = sample();
  auto m = r.match(verb::get, "/v1/users/me");
  CAF_REQUIRE(m.result == outcome::found);
  CAF_CHECK_EQUAL(m.path_template, "/v1/users/me");
  auto other = r.match(verb::get, "/v1/users/42");
  CAF_REQUIRE(other.result == outcome::found);
  CAF_CHECK_EQUAL(other.path_template, "/v1/users/{id}");
}

CAF_TEST(a less specific template serves a method the specific one lacks) {
  auto r = sample();
  auto m = r.match(verb::patch, "/v1/users/me");
  CAF_REQUIRE(m.result == outcome::found);
  CAF_CHECK_EQUAL(m.path_template, "/v1/users/{id}");
  CAF_CHECK_EQUAL(m.params.at(0).second, "me");
}

CAF_TEST(an unknown path is not found) {
  auto r = sample();
  CAF_CHECK(r.match(verb::get, "/nope").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "/healthz/").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "/v1/users").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "/v1/users/").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "//healthz").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "healthz").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "").result == outcome::not_found);
}

CAF_TEST(a malformed escape is not found rather than an error) {
  auto r = sample();
  CAF_CHECK(r.match(verb::get, "/v1/users/%zz").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "/v1/users/%2").result == outcome::not_found);
  CAF_CHECK(r.match(verb::get, "/v1/users/%00").result == outcome::not_found);
}

CAF_TEST(a wrong method is not allowed and lists the allowed ones) {
  auto r = sample();
  auto m = r.match(verb::post, "/healthz");
  CAF_REQUIRE(m.result == outcome::method_not_allowed);
  CAF_CHECK_EQUAL(m.allow, "GET, HEAD, OPTIONS");
  auto users = r.match(verb::put, "/v1/users/42");
  CAF_REQUIRE(users.result == outcome::method_not_allowed);
  CAF_CHECK_EQUAL(users.allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
  CAF_CHECK_EQUAL(users.path_template, "/v1/users/{id}");
}

CAF_TEST(allow merges every template that matches the path) {
  auto r = sample();
  auto m = r.match(verb::put, "/v1/users/me");
  CAF_REQUIRE(m.result == outcome::method_not_allowed);
  CAF_CHECK_EQUAL(m.allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
  CAF_CHECK_EQUAL(m.path_template, "/v1/users/me");
}

CAF_TEST(head is answered by the get route) {
  auto r = sample();
  auto m = r.match(verb::head, "/healthz");
  CAF_REQUIRE(m.result == outcome::found);
  CAF_CHECK(m.matched->method == verb::get);
}

CAF_TEST(options on a known path reports the allowed methods) {
  auto r = sample();
  auto m = r.match(verb::options, "/healthz");
  CAF_REQUIRE(m.result == outcome::method_not_allowed);
  CAF_CHECK_EQUAL(m.allow, "GET, HEAD, OPTIONS");
}

CAF_TEST(the root path is a route like any other) {
  auto r = sample();
  CAF_CHECK(r.match(verb::get, "/").result == outcome::found);
}

CAF_TEST(duplicate and malformed templates are refused at registration) {
  auto r = sample();
  CAF_CHECK_EQUAL(
    [&] {
      try {
        r.add({verb::get, "/healthz", noop(), ""});
      } catch (const std::invalid_argument&) {
        return true;
      }
      return false;
    }(),
    true);
  for (const char* bad : {"healthz", "/a/{b", "/a/b}c", "/a/x{y}"}) {
    bool refused = false;
    try {
      r.add({verb::get, bad, noop(), ""});
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    CAF_CHECK(refused);
  }
}

CAF_TEST(percent decoding handles every escape) {
  std::string out;
  CAF_CHECK(percent_decode("a%41%62c", out));
  CAF_CHECK_EQUAL(out, "aAbc");
  CAF_CHECK(percent_decode("%e2%82%AC", out));
  CAF_CHECK_EQUAL(out, "\xe2\x82\xac");
  CAF_CHECK(!percent_decode("%", out));
  CAF_CHECK(!percent_decode("%4", out));
  CAF_CHECK(!percent_decode("%g1", out));
}

CAF_TEST(verbs round trip through their names) {
  for (auto v :
       {verb::get, verb::head, verb::post, verb::put, verb::patch, verb::del, verb::options}) {
    CAF_CHECK(verb_from_string(to_string(v)) == v);
  }
  CAF_CHECK(verb_from_string("BREW") == verb::other);
  CAF_CHECK(verb_from_string("get") == verb::other); // methods are case-sensitive
}

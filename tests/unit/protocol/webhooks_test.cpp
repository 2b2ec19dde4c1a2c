#define CAF_SUITE protocol.webhooks

#include "protocol/webhooks.hpp"

#include "protocol/crypto.hpp"
#include "protocol/request_id.hpp"

#include <caf/test/unit_test.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <set>

using namespace troupe::protocol;
using webhooks::verdict;

// Every expected signature below was computed independently with Python's hmac, hashlib and
// base64 modules, not with the code under test.

namespace {

// Our own names, so a failed check prints which verdict came back without relying on
// webhooks::to_string.
std::string name(verdict v) {
  switch (v) {
  case verdict::ok:
    return "ok";
  case verdict::missing:
    return "missing";
  case verdict::malformed:
    return "malformed";
  case verdict::stale:
    return "stale";
  case verdict::mismatch:
    return "mismatch";
  }
  return "?";
}

// The Standard Webhooks specification's example.
const std::string std_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const std::string std_key_hex = "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0";
const std::string std_id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const std::int64_t std_ts = 1614265330;
const std::string std_body = R"({"test": 2432232314})";
const std::string std_sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

std::string std_key() {
  auto key = crypto::unhex(std_key_hex);
  CAF_REQUIRE(key.has_value());
  return *key;
}

std::string standard(std::string_view id, std::string_view timestamp, std::string_view signatures,
                     std::string_view body, std::int64_t now) {
  return name(webhooks::verify_standard(std_secret, id, timestamp, signatures, body, now, 300));
}

// Stripe: HMAC-SHA256("whsec_test_secret", "1700000000." + body) in hex.
const std::string stripe_secret = "whsec_test_secret";
const std::int64_t stripe_t = 1700000000;
const std::string stripe_body = R"({"id":"evt_1","object":"event"})";
const std::string stripe_v1 = "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd";
// The same message under "whsec_other_secret".
const std::string stripe_wrong = "b7ecf2b25fe8be89275e059c67c71512f61cf5110fbb361a3534f45aa94713f7";
// HMAC-SHA256("whsec_test_secret", "v0"): just some other hex.
const std::string stripe_v0 = "8f640df59393faa68de09366c43ef5e979440a8b0faffd266de78f6bbb285e51";

std::string stripe(std::string_view header, std::string_view body, std::int64_t now) {
  return name(webhooks::verify_stripe(stripe_secret, header, body, now, 300));
}

// GitHub's documented example ("Validating webhook deliveries").
const std::string github_secret = "It's a Secret to Everybody";
const std::string github_body = "Hello, World!";
const std::string github_hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

std::string github(std::string_view header, std::string_view body) {
  return name(webhooks::verify_github(github_secret, header, body));
}

bool forbidden(const char* text) {
  unsigned char bytes[16] = {};
  if (std::strchr(text, ':') != nullptr) {
    CAF_REQUIRE_EQUAL(inet_pton(AF_INET6, text, bytes), 1);
    return webhooks::forbidden_address(bytes, 16);
  }
  CAF_REQUIRE_EQUAL(inet_pton(AF_INET, text, bytes), 1);
  return webhooks::forbidden_address(bytes, 4);
}

} // namespace

// -- event types and patterns -------------------------------------------------

CAF_TEST(event types are lower case dotted segments of at most 200 characters) {
  for (const char* ok : {"a", "order.created", "a_b.c1", "0", "order.item.added"}) {
    CAF_CHECK(webhooks::valid_event_type(ok));
  }
  for (const char* bad :
       {"", "A", "Order.created", "a.", ".a", "a..b", "a-b", "a b", "*", "order.*"}) {
    CAF_CHECK(!webhooks::valid_event_type(bad));
  }
  CAF_CHECK(webhooks::valid_event_type(std::string(200, 'a')));
  CAF_CHECK(!webhooks::valid_event_type(std::string(201, 'a')));
  CAF_CHECK(!webhooks::valid_event_type(std::string(99, 'a') + "." + std::string(101, 'b')));
}

CAF_TEST(event patterns are a type or a prefix ending in dot star or star) {
  for (const char* ok : {"*", "order.*", "order.item.*", "order.created", "a"}) {
    CAF_CHECK(webhooks::valid_event_pattern(ok));
  }
  for (const char* bad :
       {"", "*.x", "order*", "order.*.x", "**", ".*", "Order.*", "order.", "order.**", "a-b.*"}) {
    CAF_CHECK(!webhooks::valid_event_pattern(bad));
  }
}

CAF_TEST(patterns match themselves and star everything and a prefix its segments) {
  CAF_CHECK(webhooks::pattern_matches("order.*", "order.created"));
  CAF_CHECK(webhooks::pattern_matches("order.*", "order.item.added"));
  CAF_CHECK(!webhooks::pattern_matches("order.*", "order"));
  CAF_CHECK(!webhooks::pattern_matches("order.*", "orders.created"));
  CAF_CHECK(!webhooks::pattern_matches("order.*", "user.created"));
  CAF_CHECK(webhooks::pattern_matches("order.item.*", "order.item.added"));
  CAF_CHECK(!webhooks::pattern_matches("order.item.*", "order.created"));
  CAF_CHECK(webhooks::pattern_matches("*", "order.created"));
  CAF_CHECK(webhooks::pattern_matches("*", "a"));
  CAF_CHECK(webhooks::pattern_matches("order.created", "order.created"));
  CAF_CHECK(!webhooks::pattern_matches("order.created", "order.created.late"));
  CAF_CHECK(!webhooks::pattern_matches("order.created", "order"));
  CAF_CHECK(!webhooks::pattern_matches("order.created", "order.updated"));
}

CAF_TEST(no patterns subscribe to every event) {
  CAF_CHECK(webhooks::subscribed({}, "order.created"));
  CAF_CHECK(webhooks::subscribed({}, "anything"));
  const std::vector<std::string> some{"order.*", "user.deleted"};
  CAF_CHECK(webhooks::subscribed(some, "order.created"));
  CAF_CHECK(webhooks::subscribed(some, "user.deleted"));
  CAF_CHECK(!webhooks::subscribed(some, "user.created"));
  CAF_CHECK(!webhooks::subscribed(some, "order"));
}

// -- secrets and signing ------------------------------------------------------

CAF_TEST(secret keys are the base64 after whsec) {
  CAF_CHECK_EQUAL(crypto::hex(webhooks::secret_key(std_secret).value_or("?")), std_key_hex);
  // The prefix is optional.
  CAF_CHECK_EQUAL(
    crypto::hex(webhooks::secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").value_or("?")),
    std_key_hex);
  CAF_CHECK(!webhooks::secret_key("whsec_not base64!"));
  CAF_CHECK(!webhooks::secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL")); // 29 characters
  CAF_CHECK(!webhooks::secret_key("whsec_"));
  // 15 bytes is too short, 16 and 64 are fine, 65 is too long ("x" repeated).
  CAF_CHECK(!webhooks::secret_key("whsec_eHh4eHh4eHh4eHh4eHh4"));
  CAF_CHECK_EQUAL(webhooks::secret_key("whsec_eHh4eHh4eHh4eHh4eHh4eA==").value_or("?"),
                  std::string(16, 'x'));
  CAF_CHECK_EQUAL(webhooks::secret_key("whsec_eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
                                       "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA==")
                    .value_or("?"),
                  std::string(64, 'x'));
  CAF_CHECK(!webhooks::secret_key("whsec_eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
                                  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg="));
}

CAF_TEST(new secrets carry 32 random bytes) {
  const auto a = webhooks::make_secret();
  const auto b = webhooks::make_secret();
  CAF_CHECK_EQUAL(a.rfind("whsec_", 0), 0u);
  CAF_CHECK_EQUAL(b.rfind("whsec_", 0), 0u);
  CAF_CHECK_EQUAL(a.size(), 6u + 44u);
  CAF_CHECK_EQUAL(webhooks::secret_key(a).value_or("").size(), 32u);
  CAF_CHECK_EQUAL(webhooks::secret_key(b).value_or("").size(), 32u);
  CAF_CHECK_NOT_EQUAL(a, b);
}

CAF_TEST(sign matches the standard webhooks example) {
  CAF_CHECK_EQUAL(webhooks::sign(std_key(), std_id, std_ts, std_body), std_sig);
  // Every input is signed.
  CAF_CHECK_EQUAL(webhooks::sign(std_key(), std_id, std_ts + 1, std_body),
                  "v1,l6C9/1+N/lSU6+gfh+YEGqTK2aQ+k8nMEWDvvCgHh7U=");
  CAF_CHECK_NOT_EQUAL(webhooks::sign(std_key(), std_id, std_ts, std_body + " "), std_sig);
  CAF_CHECK_NOT_EQUAL(webhooks::sign(std_key(), "msg_other", std_ts, std_body), std_sig);
}

CAF_TEST(the signature header carries one entry per key in order) {
  std::string fresh;
  for (int i = 0; i < 32; ++i) {
    fresh.push_back(static_cast<char>(i));
  }
  // The new key first, then the one being rotated out.
  CAF_CHECK_EQUAL(webhooks::signature_header({fresh, std_key()}, std_id, std_ts, std_body),
                  "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI= " + std_sig);
  CAF_CHECK_EQUAL(webhooks::signature_header({std_key()}, std_id, std_ts, std_body), std_sig);
}

CAF_TEST(verdicts have distinct names) {
  std::set<std::string> names;
  for (auto v :
       {verdict::ok, verdict::missing, verdict::malformed, verdict::stale, verdict::mismatch}) {
    const char* text = webhooks::to_string(v);
    CAF_REQUIRE(text != nullptr);
    CAF_CHECK(*text != '\0');
    names.insert(text);
  }
  CAF_CHECK_EQUAL(names.size(), 5u);
}

// -- inbound: Standard Webhooks -----------------------------------------------

CAF_TEST(standard webhooks accept the example within the tolerance) {
  const std::string ts = std::to_string(std_ts);
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig, std_body, std_ts), "ok");
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig, std_body, std_ts + 300), "ok");
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig, std_body, std_ts - 300), "ok");
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig, std_body, std_ts + 301), "stale");
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig, std_body, std_ts - 301), "stale");
}

CAF_TEST(standard webhooks refuse anything changed) {
  const std::string ts = std::to_string(std_ts);
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig, R"({"test": 2432232315})", std_ts), "mismatch");
  CAF_CHECK_EQUAL(standard("msg_p5jXN8AQM9LWM0D4loKWxJeK", ts, std_sig, std_body, std_ts),
                  "mismatch");
  CAF_CHECK_EQUAL(standard(std_id, std::to_string(std_ts + 1), std_sig, std_body, std_ts),
                  "mismatch");
  CAF_CHECK_EQUAL(
    name(webhooks::verify_standard("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", std_id, ts,
                                   std_sig, std_body, std_ts, 300)),
    "mismatch");
}

CAF_TEST(standard webhooks accept any matching entry of the list) {
  const std::string ts = std::to_string(std_ts);
  CAF_CHECK_EQUAL(standard(std_id, ts, "v1,bogus= " + std_sig, std_body, std_ts), "ok");
  CAF_CHECK_EQUAL(standard(std_id, ts, "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI= " + std_sig,
                           std_body, std_ts),
                  "ok");
  CAF_CHECK_EQUAL(standard(std_id, ts, std_sig + " v1,bogus=", std_body, std_ts), "ok");
  CAF_CHECK_EQUAL(
    standard(std_id, ts, "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI=", std_body, std_ts),
    "mismatch");
}

CAF_TEST(standard webhooks say what is missing or malformed) {
  const std::string ts = std::to_string(std_ts);
  CAF_CHECK_EQUAL(standard(std_id, ts, "", std_body, std_ts), "missing");
  CAF_CHECK_EQUAL(standard("", ts, std_sig, std_body, std_ts), "missing");
  CAF_CHECK_EQUAL(standard(std_id, "", std_sig, std_body, std_ts), "missing");
  CAF_CHECK_EQUAL(standard(std_id, "abc", std_sig, std_body, std_ts), "malformed");
  CAF_CHECK_EQUAL(standard(std_id, "1614265330x", std_sig, std_body, std_ts), "malformed");
  // Only v1 entries count; the header leaves open whether a lone v2 is malformed or a mismatch.
  const auto v2
    = standard(std_id, ts, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", std_body, std_ts);
  CAF_CHECK(v2 == "mismatch" || v2 == "malformed");
}

// -- inbound: Stripe ------------------------------------------------------------

CAF_TEST(stripe signatures verify within the tolerance) {
  const std::string header = "t=1700000000,v1=" + stripe_v1;
  CAF_CHECK_EQUAL(stripe(header, stripe_body, stripe_t), "ok");
  CAF_CHECK_EQUAL(stripe(header, stripe_body, stripe_t + 300), "ok");
  CAF_CHECK_EQUAL(stripe(header, stripe_body, stripe_t + 301), "stale");
  CAF_CHECK_EQUAL(stripe(header, stripe_body, stripe_t - 301), "stale");
}

CAF_TEST(stripe accepts any v1 entry and ignores v0) {
  CAF_CHECK_EQUAL(
    stripe("t=1700000000,v0=" + stripe_v0 + ",v1=" + stripe_wrong + ",v1=" + stripe_v1, stripe_body,
           stripe_t),
    "ok");
  CAF_CHECK_EQUAL(stripe("t=1700000000,v1=" + stripe_wrong, stripe_body, stripe_t), "mismatch");
  // A v0 entry with the right digest is not a v1 signature.
  CAF_CHECK_NOT_EQUAL(stripe("t=1700000000,v0=" + stripe_v1, stripe_body, stripe_t), "ok");
}

CAF_TEST(stripe refuses a changed body or timestamp) {
  CAF_CHECK_EQUAL(stripe("t=1700000000,v1=" + stripe_v1, stripe_body + " ", stripe_t), "mismatch");
  CAF_CHECK_EQUAL(stripe("t=1700000001,v1=" + stripe_v1, stripe_body, stripe_t + 1), "mismatch");
}

CAF_TEST(stripe says what is missing or malformed) {
  CAF_CHECK_EQUAL(stripe("", stripe_body, stripe_t), "missing");
  CAF_CHECK_EQUAL(stripe("v1=" + stripe_v1, stripe_body, stripe_t), "malformed");
  CAF_CHECK_EQUAL(stripe("t=soon,v1=" + stripe_v1, stripe_body, stripe_t), "malformed");
}

// -- inbound: GitHub ------------------------------------------------------------

CAF_TEST(github signatures match the documented example) {
  CAF_CHECK_EQUAL(github("sha256=" + github_hex, github_body), "ok");
  CAF_CHECK_EQUAL(github("sha256=" + github_hex, "Hello, World?"), "mismatch");
  CAF_CHECK_EQUAL(name(webhooks::verify_github("It's a secret to everybody", "sha256=" + github_hex,
                                               github_body)),
                  "mismatch");
  CAF_CHECK_EQUAL(github("", github_body), "missing");
}

CAF_TEST(github takes only lower case sha256) {
  const auto upper = github(
    "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", github_body);
  CAF_CHECK(upper == "mismatch" || upper == "malformed");
  // The HMAC-SHA1 of the same example under the older header's prefix.
  const auto sha1 = github("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", github_body);
  CAF_CHECK(sha1 == "mismatch" || sha1 == "malformed");
  const auto bare = github(github_hex, github_body);
  CAF_CHECK(bare == "mismatch" || bare == "malformed");
}

// -- retries ----------------------------------------------------------------------

CAF_TEST(retry delays follow the schedule with ten percent jitter) {
  const std::vector<std::uint32_t> schedule{5, 300};
  CAF_CHECK_EQUAL(webhooks::retry_delay_ms(schedule, 1, 0.5).value_or(-1), 5000);
  CAF_CHECK_EQUAL(webhooks::retry_delay_ms(schedule, 1, 0.0).value_or(-1), 4500);
  const auto top = webhooks::retry_delay_ms(schedule, 1, 0.999).value_or(-1);
  CAF_CHECK_GREATER_OR_EQUAL(top, 5490);
  CAF_CHECK_LESS_OR_EQUAL(top, 5500);
  const auto second = webhooks::retry_delay_ms(schedule, 2, 0.5).value_or(-1);
  CAF_CHECK_GREATER_OR_EQUAL(second, 299999);
  CAF_CHECK_LESS_OR_EQUAL(second, 300001);
  const auto low = webhooks::retry_delay_ms(schedule, 2, 0.0).value_or(-1);
  CAF_CHECK_GREATER_OR_EQUAL(low, 269999);
  CAF_CHECK_LESS_OR_EQUAL(low, 270001);
  CAF_CHECK(!webhooks::retry_delay_ms(schedule, 3, 0.5));
  CAF_CHECK(!webhooks::retry_delay_ms(schedule, 0, 0.5));
  CAF_CHECK(!webhooks::retry_delay_ms({}, 1, 0.5));
}

CAF_TEST(retry delays handle the ends of the configured range) {
  CAF_CHECK_EQUAL(webhooks::retry_delay_ms({0}, 1, 0.7).value_or(-1), 0);
  // A year in milliseconds does not fit 32 bits.
  CAF_CHECK_EQUAL(webhooks::retry_delay_ms({31536000}, 1, 0.5).value_or(-1),
                  std::int64_t{31536000000});
}

CAF_TEST(retry after takes seconds or an http date within bounds) {
  const std::int64_t now = 784111747; // 30 s before Sun, 06 Nov 1994 08:49:37 GMT
  CAF_CHECK_EQUAL(webhooks::retry_after_s("120", now).value_or(-1), 120);
  CAF_CHECK_EQUAL(webhooks::retry_after_s("0", now).value_or(-1), 0);
  CAF_CHECK_EQUAL(webhooks::retry_after_s("3600", now).value_or(-1), 3600);
  CAF_CHECK_EQUAL(webhooks::retry_after_s("999999", now).value_or(-1), webhooks::max_retry_after_s);
  CAF_CHECK(!webhooks::retry_after_s("-1", now));
  CAF_CHECK(!webhooks::retry_after_s("abc", now));
  CAF_CHECK(!webhooks::retry_after_s("", now));
  CAF_CHECK_EQUAL(webhooks::retry_after_s("Sun, 06 Nov 1994 08:49:37 GMT", now).value_or(-1), 30);
  CAF_CHECK_EQUAL(webhooks::retry_after_s("Sun, 06 Nov 1994 08:49:37 GMT", now + 1000).value_or(-1),
                  0);
  CAF_CHECK_EQUAL(webhooks::retry_after_s("Sun, 06 Nov 1994 08:49:37 GMT", now - 7200).value_or(-1),
                  webhooks::max_retry_after_s);
}

// -- targets ------------------------------------------------------------------------

CAF_TEST(urls split into scheme host port and target) {
  std::string error;
  auto t = webhooks::parse_url("https://example.com/hook?x=1", error);
  CAF_REQUIRE(t.has_value());
  CAF_CHECK(t->tls);
  CAF_CHECK_EQUAL(t->host, "example.com");
  CAF_CHECK_EQUAL(t->port, "443");
  CAF_CHECK_EQUAL(t->path, "/hook?x=1");

  t = webhooks::parse_url("http://example.com", error);
  CAF_REQUIRE(t.has_value());
  CAF_CHECK(!t->tls);
  CAF_CHECK_EQUAL(t->host, "example.com");
  CAF_CHECK_EQUAL(t->port, "80");
  CAF_CHECK_EQUAL(t->path, "/");

  t = webhooks::parse_url("http://[::1]:8080/a", error);
  CAF_REQUIRE(t.has_value());
  CAF_CHECK(!t->tls);
  CAF_CHECK_EQUAL(t->host, "::1");
  CAF_CHECK_EQUAL(t->port, "8080");
  CAF_CHECK_EQUAL(t->path, "/a");

  const std::string base = "https://example.com/";
  CAF_CHECK(webhooks::parse_url(base + std::string(2048 - base.size(), 'a'), error));
}

CAF_TEST(urls that are not plain http targets are refused with a reason) {
  const std::string base = "https://example.com/";
  for (const std::string& url :
       {std::string{"ftp://x"}, std::string{"http://user:pw@x/"}, std::string{"http://"},
        std::string{"http://x/#frag"}, base + std::string(2049 - base.size(), 'a'),
        std::string{"http://x:99999/"}, std::string{"http://x:0/"}, std::string{""},
        std::string{"example.com/hook"}}) {
    std::string error;
    CAF_CHECK(!webhooks::parse_url(url, error));
    CAF_CHECK(!error.empty());
  }
}

CAF_TEST(private and special ipv4 addresses are forbidden) {
  for (const char* bad :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255", "240.0.0.1"}) {
    CAF_CHECK(forbidden(bad));
  }
  for (const char* good :
       {"8.8.8.8", "172.32.0.1", "93.184.216.34", "100.128.0.1", "172.15.255.255", "1.1.1.1"}) {
    CAF_CHECK(!forbidden(good));
  }
}

CAF_TEST(private and special ipv6 addresses are forbidden) {
  for (const char* bad :
       {"::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1",
        "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:0a00:0001::"}) {
    CAF_CHECK(forbidden(bad));
  }
  // Public, and public IPv4 inside the mapped, NAT64 and 6to4 forms.
  for (const char* good :
       {"2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::"}) {
    CAF_CHECK(!forbidden(good));
  }
}

CAF_TEST(an attempt is judged by its answer and the retry schedule) {
  using troupe::protocol::webhooks::judge_attempt;
  const std::vector<std::uint32_t> schedule{5, 300};
  for (int status : {200, 201, 204, 299}) {
    auto ok = judge_attempt(status, "", 1, schedule, 0.5, 1000);
    CAF_CHECK_EQUAL(ok.status, "succeeded");
    CAF_CHECK(!ok.gone);
  }
  auto gone = judge_attempt(410, "", 1, schedule, 0.5, 1000);
  CAF_CHECK_EQUAL(gone.status, "failed");
  CAF_CHECK(gone.gone);
  // No answer, a redirect or a 500: the schedule decides.
  for (int status : {0, 302, 400, 500}) {
    auto first = judge_attempt(status, "", 1, schedule, 0.5, 1000);
    CAF_CHECK_EQUAL(first.status, "pending");
    CAF_CHECK_EQUAL(first.delay_ms, 5000);
    CAF_CHECK_EQUAL(judge_attempt(status, "", 2, schedule, 0.5, 1000).delay_ms, 300000);
    CAF_CHECK_EQUAL(judge_attempt(status, "", 3, schedule, 0.5, 1000).status, "failed");
  }
  // Retry-After of 429/502/503/504 delays a retry, never hastens it, and is bounded.
  CAF_CHECK_EQUAL(judge_attempt(429, "60", 1, schedule, 0.5, 1000).delay_ms, 60000);
  CAF_CHECK_EQUAL(judge_attempt(503, "2", 1, schedule, 0.5, 1000).delay_ms, 5000);
  CAF_CHECK_EQUAL(judge_attempt(504, "86400", 1, schedule, 0.5, 1000).delay_ms, 3600000);
  CAF_CHECK_EQUAL(judge_attempt(500, "60", 1, schedule, 0.5, 1000).delay_ms, 5000);
  CAF_CHECK_EQUAL(judge_attempt(502, "soon", 1, schedule, 0.5, 1000).delay_ms, 5000);
  // The last attempt fails even when the receiver asks for a later one.
  CAF_CHECK_EQUAL(judge_attempt(429, "10", 3, schedule, 0.5, 1000).status, "failed");
}

CAF_TEST(only well formed w3c traceparents are passed on) {
  using troupe::protocol::valid_traceparent;
  CAF_CHECK(valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CAF_CHECK(valid_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  CAF_CHECK(!valid_traceparent(""));
  CAF_CHECK(!valid_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  CAF_CHECK(!valid_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CAF_CHECK(!valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  CAF_CHECK(!valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  CAF_CHECK(!valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-"));
  CAF_CHECK(!valid_traceparent("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CAF_CHECK(!valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"));
}

#define CAF_SUITE protocol.jwt

#include "protocol/jwt.hpp"

#include "protocol/crypto.hpp"

#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

using namespace troupe::protocol;
using json = nlohmann::json;

namespace {

struct fixture {
  jwt::ed25519_key key = jwt::generate_ed25519();
  std::int64_t now = 1800000000;

  json claims() const {
    return {{"iss", "troupe"}, {"sub", "u1"},      {"tid", "t1"}, {"sid", "s1"},
            {"iat", now},      {"exp", now + 900}, {"jti", "j1"}};
  }

  jwt::verification check(const std::string& token, std::int64_t at) const {
    return jwt::verify(
      token,
      [this](std::string_view kid) -> std::optional<std::string> {
        if (kid == "k1") {
          return key.public_key;
        }
        return std::nullopt;
      },
      "troupe", at);
  }

  // The token with one part replaced by `part` (base64url of `text`).
  static std::string with_part(const std::string& token, int index, const std::string& text) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (int i = 0; i < 3; ++i) {
      const auto dot = token.find('.', start);
      parts.push_back(token.substr(start, dot - start));
      start = dot + 1;
    }
    parts[static_cast<std::size_t>(index)] = crypto::base64url(text);
    return parts[0] + "." + parts[1] + "." + parts[2];
  }
};

} // namespace

CAF_TEST(ed25519 signs as RFC 8037 appendix A says) {
  const auto seed = crypto::unbase64url("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
  CAF_REQUIRE(seed);
  const auto pair = jwt::ed25519_from_seed(*seed);
  CAF_REQUIRE(pair);
  CAF_CHECK_EQUAL(crypto::base64url(pair->public_key),
                  "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  const std::string input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
  const auto signature = jwt::ed25519_sign(input, pair->private_seed);
  CAF_CHECK_EQUAL(crypto::base64url(signature),
                  "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpA"
                  "r_MuM0KAg");
  CAF_CHECK(jwt::ed25519_verify(input, signature, pair->public_key));
  CAF_CHECK(!jwt::ed25519_verify(input + "x", signature, pair->public_key));
}

CAF_TEST_FIXTURE_SCOPE(jwt_tests, fixture)

CAF_TEST(a signed token verifies and keeps its claims) {
  const auto token = jwt::sign(claims(), "k1", key);
  const auto v = check(token, now);
  CAF_REQUIRE(!v.error);
  const auto got = json::parse(v.claims);
  CAF_CHECK_EQUAL(got["sub"], "u1");
  CAF_CHECK_EQUAL(got["tid"], "t1");
  const auto header = json::parse(*crypto::unbase64url(token.substr(0, token.find('.'))));
  CAF_CHECK_EQUAL(header["alg"], "EdDSA");
  CAF_CHECK_EQUAL(header["kid"], "k1");
}

CAF_TEST(tampered forged expired and foreign tokens are refused) {
  const auto token = jwt::sign(claims(), "k1", key);
  auto failure_of = [this](const std::string& t, std::int64_t at) {
    const auto v = check(t, at);
    return v.error ? std::string{jwt::to_string(*v.error)} : std::string{"accepted"};
  };
  // A changed payload (say, another tenant) no longer matches the signature.
  auto other = claims();
  other["tid"] = "t2";
  CAF_CHECK_EQUAL(failure_of(with_part(token, 1, other.dump()), now), "bad_signature");
  // alg none (no signature) and HS256 are refused before any key is used.
  const auto none = with_part(token, 0, R"({"alg":"none","kid":"k1"})");
  CAF_CHECK_EQUAL(failure_of(none.substr(0, none.rfind('.') + 1), now), "bad_algorithm");
  CAF_CHECK_EQUAL(failure_of(with_part(token, 0, R"({"alg":"HS256","kid":"k1"})"), now),
                  "bad_algorithm");
  CAF_CHECK_EQUAL(failure_of(with_part(token, 0, R"({"alg":"EdDSA","kid":"k9"})"), now),
                  "unknown_key");
  CAF_CHECK_EQUAL(failure_of(with_part(token, 0, R"({"alg":"EdDSA"})"), now), "unknown_key");
  // Signed by another key under our kid.
  const auto stranger = jwt::generate_ed25519();
  CAF_CHECK_EQUAL(failure_of(jwt::sign(claims(), "k1", stranger), now), "bad_signature");
  // Expiry is exclusive; a token from the future (beyond the skew) is refused.
  CAF_CHECK_EQUAL(failure_of(token, now + 899), "accepted");
  CAF_CHECK_EQUAL(failure_of(token, now + 900), "expired");
  CAF_CHECK_EQUAL(failure_of(token, now - 61), "not_yet_valid");
  auto foreign = claims();
  foreign["iss"] = "someone-else";
  CAF_CHECK_EQUAL(failure_of(jwt::sign(foreign, "k1", key), now), "wrong_issuer");
  auto no_exp = claims();
  no_exp.erase("exp");
  CAF_CHECK_EQUAL(failure_of(jwt::sign(no_exp, "k1", key), now), "expired");
  CAF_CHECK_EQUAL(failure_of("a.b", now), "malformed");
  CAF_CHECK_EQUAL(failure_of("a.b.c.d", now), "malformed");
  CAF_CHECK_EQUAL(failure_of("!!.??.**", now), "malformed");
}

CAF_TEST(the public jwk is what a jose library expects) {
  const auto jwk = jwt::public_jwk("k1", key.public_key);
  CAF_CHECK_EQUAL(jwk["kty"], "OKP");
  CAF_CHECK_EQUAL(jwk["crv"], "Ed25519");
  CAF_CHECK_EQUAL(jwk["alg"], "EdDSA");
  CAF_CHECK_EQUAL(jwk["use"], "sig");
  CAF_CHECK_EQUAL(jwk["kid"], "k1");
  CAF_CHECK_EQUAL(crypto::unbase64url(jwk["x"].get<std::string>()).value_or(""), key.public_key);
  CAF_CHECK(!jwk.contains("d"));
}

CAF_TEST_FIXTURE_SCOPE_END()

#define CAF_SUITE protocol.crypto

#include "protocol/crypto.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::protocol::crypto;

namespace {

std::string from_hex(std::string_view text) {
  auto bytes = unhex(text);
  CAF_REQUIRE(bytes.has_value());
  return *bytes;
}

} // namespace

CAF_TEST(sha256 matches the FIPS 180 example) {
  CAF_CHECK_EQUAL(hex(sha256("abc")),
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CAF_CHECK_EQUAL(hex(sha256("")),
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

CAF_TEST(hmac sha256 matches RFC 4231 test case 2) {
  CAF_CHECK_EQUAL(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
                  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

CAF_TEST(hkdf sha256 matches RFC 5869 test case 1) {
  const auto ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const auto salt = from_hex("000102030405060708090a0b0c");
  const auto info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  CAF_CHECK_EQUAL(hex(hkdf_sha256(ikm, salt, info, 42)),
                  "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                  "34007208d5b887185865");
}

CAF_TEST(aes gcm opens what it sealed and nothing else) {
  const auto key = random_bytes(32);
  const auto sealed = seal(key, "alice@example.com", "tenant/entry");
  CAF_CHECK_EQUAL(sealed.size(), 12u + 17u + 16u);
  CAF_CHECK_EQUAL(open(key, sealed, "tenant/entry").value_or("?"), "alice@example.com");
  CAF_CHECK(!open(key, sealed, "tenant/other").has_value());
  CAF_CHECK(!open(random_bytes(32), sealed, "tenant/entry").has_value());
  auto flipped = sealed;
  flipped[14] = static_cast<char>(flipped[14] ^ 1);
  CAF_CHECK(!open(key, flipped, "tenant/entry").has_value());
  CAF_CHECK(!open(key, sealed.substr(0, 20), "tenant/entry").has_value());
  // A fresh nonce every time: the same plaintext never seals to the same bytes.
  CAF_CHECK_NOT_EQUAL(seal(key, "x", ""), seal(key, "x", ""));
}

CAF_TEST(aes gcm matches a known answer) {
  // NIST GCM test vector (gcmEncryptExtIV256, Count 0 with a 128-bit plaintext).
  const auto key = from_hex("31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22");
  const auto nonce = from_hex("0d18e06c7c725ac9e362e1ce");
  const auto ct = from_hex("fa4362189661d163fcd6a56d8bf0405a");
  const auto tag = from_hex("d636ac1bbedd5cc3ee727dc2ab4a9489");
  CAF_CHECK_EQUAL(hex(open(key, nonce + ct + tag, "").value_or("")),
                  "2db5168e932556f8089a0622981d017d");
}

CAF_TEST(constant time equality compares length and bytes) {
  CAF_CHECK(constant_time_equal("abc", "abc"));
  CAF_CHECK(!constant_time_equal("abc", "abd"));
  CAF_CHECK(!constant_time_equal("abc", "abcd"));
  CAF_CHECK(constant_time_equal("", ""));
}

CAF_TEST(base64 and base64url follow RFC 4648) {
  CAF_CHECK_EQUAL(base64("foobar"), "Zm9vYmFy");
  CAF_CHECK_EQUAL(base64("fooba"), "Zm9vYmE=");
  CAF_CHECK_EQUAL(base64("foob"), "Zm9vYg==");
  CAF_CHECK_EQUAL(base64url("\xfb\xff"), "-_8");
  CAF_CHECK_EQUAL(unbase64url("-_8").value_or("?"), "\xfb\xff");
  CAF_CHECK_EQUAL(unbase64("Zm9vYg==").value_or("?"), "foob");
  CAF_CHECK(!unbase64url("a").has_value());
  CAF_CHECK(!unbase64url("ab=").has_value());
  CAF_CHECK(!unbase64url("-_9").has_value()); // non-zero trailing bits
  CAF_CHECK(!unbase64("Zm9vYg=").has_value());
  CAF_CHECK(!unhex("abc").has_value());
  CAF_CHECK(!unhex("zz").has_value());
}

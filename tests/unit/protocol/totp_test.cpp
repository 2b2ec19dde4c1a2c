#define CAF_SUITE protocol.totp

#include "protocol/totp.hpp"

#include "protocol/crypto.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::protocol;

namespace {

const std::string rfc_key = "12345678901234567890"; // RFC 6238 Appendix B, SHA-1

} // namespace

CAF_TEST(codes match the RFC 6238 test vectors for SHA-1) {
  const std::pair<std::uint64_t, const char*> vectors[]
    = {{59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
       {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}};
  for (const auto& [time, code] : vectors) {
    CAF_CHECK_EQUAL(totp::code_at(rfc_key, totp::step_of(time), 8), code);
  }
  // Six digits are the same value modulo 10^6.
  CAF_CHECK_EQUAL(totp::code_at(rfc_key, totp::step_of(59), 6), "287082");
}

CAF_TEST(verify accepts one step either side and says which step matched) {
  const std::uint64_t now = 1234567890;
  const auto step = totp::step_of(now);
  CAF_CHECK_EQUAL(totp::verify(rfc_key, totp::code_at(rfc_key, step), now).value_or(0), step);
  CAF_CHECK_EQUAL(totp::verify(rfc_key, totp::code_at(rfc_key, step - 1), now).value_or(0),
                  step - 1);
  CAF_CHECK_EQUAL(totp::verify(rfc_key, totp::code_at(rfc_key, step + 1), now).value_or(0),
                  step + 1);
  CAF_CHECK(!totp::verify(rfc_key, totp::code_at(rfc_key, step - 2), now));
  CAF_CHECK(!totp::verify(rfc_key, totp::code_at(rfc_key, step + 2), now));
  CAF_CHECK(!totp::verify(rfc_key, "12345", now));
  CAF_CHECK(!totp::verify(rfc_key, "abcdef", now));
}

CAF_TEST(secrets travel as base32 in an otpauth uri) {
  CAF_CHECK_EQUAL(crypto::base32("foobar"), "MZXW6YTBOI");
  CAF_CHECK_EQUAL(crypto::unbase32("mzxw 6ytb oi======").value_or("?"), "foobar");
  CAF_CHECK(!crypto::unbase32("MZ1"));
  CAF_CHECK_EQUAL(totp::otpauth_uri("Acme Inc", "ann@example.com", rfc_key),
                  "otpauth://totp/Acme%20Inc:ann%40example.com?secret="
                  "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Inc&algorithm=SHA1&digits=6"
                  "&period=30");
}

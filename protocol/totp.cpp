#include "protocol/totp.hpp"

#include "protocol/crypto.hpp"

#include <array>

namespace troupe::protocol::totp {

namespace {

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string uri_component(std::string_view in) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : in) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
                            || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

} // namespace

std::string code_at(std::string_view key, std::uint64_t step, unsigned digits) {
  std::array<char, 8> counter{};
  for (int i = 7; i >= 0; --i) {
    counter[static_cast<std::size_t>(i)] = static_cast<char>(step & 0xff);
    step >>= 8;
  }
  const auto mac = crypto::hmac_sha1(key, std::string_view{counter.data(), counter.size()});
  const auto offset = static_cast<std::size_t>(mac[19] & 0x0f);
  const std::uint32_t binary = (static_cast<std::uint32_t>(mac[offset] & 0x7f) << 24)
                               | (static_cast<std::uint32_t>(mac[offset + 1] & 0xff) << 16)
                               | (static_cast<std::uint32_t>(mac[offset + 2] & 0xff) << 8)
                               | static_cast<std::uint32_t>(mac[offset + 3] & 0xff);
  std::uint32_t modulus = 1;
  for (unsigned i = 0; i < digits; ++i) {
    modulus *= 10;
  }
  auto text = std::to_string(binary % modulus);
  return std::string(digits - text.size(), '0') + text;
}

std::optional<std::uint64_t> verify(std::string_view key, std::string_view code,
                                    std::uint64_t unix_seconds, unsigned window, unsigned digits) {
  if (code.size() != digits) {
    return std::nullopt;
  }
  const auto now = step_of(unix_seconds);
  std::optional<std::uint64_t> matched;
  // Every candidate is computed and compared, so timing does not tell which one matched.
  for (std::uint64_t step = now >= window ? now - window : 0; step <= now + window; ++step) {
    if (crypto::constant_time_equal(code_at(key, step, digits), code) && !matched) {
      matched = step;
    }
  }
  return matched;
}

std::string otpauth_uri(std::string_view issuer, std::string_view account, std::string_view key) {
  return "otpauth://totp/" + uri_component(issuer) + ":" + uri_component(account)
         + "?secret=" + crypto::base32(key) + "&issuer=" + uri_component(issuer)
         + "&algorithm=SHA1&digits=6&period=30";
}

} // namespace troupe::protocol::totp

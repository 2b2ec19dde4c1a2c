#include "protocol/webhooks.hpp"

#include "protocol/crypto.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

namespace troupe::protocol::webhooks {

namespace {

constexpr std::size_t max_type_length = 200;

bool segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// Splits on `sep`, keeping empty parts.
std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto at = text.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(text.substr(start));
      return out;
    }
    out.push_back(text.substr(start, at - start));
    start = at + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<std::int64_t> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 18) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

bool within(std::int64_t t, std::int64_t now_s, std::int64_t tolerance_s) {
  return t >= now_s - tolerance_s && t <= now_s + tolerance_s;
}

std::string lower_hex_hmac(std::string_view key, std::string_view data) {
  return crypto::hex(crypto::hmac_sha256(key, data));
}

bool forbidden_v4(const unsigned char* a) {
  const unsigned b0 = a[0];
  const unsigned b1 = a[1];
  return b0 == 0                                // "this network", 0.0.0.0
         || b0 == 10                            // RFC 1918
         || b0 == 127                           // loopback
         || (b0 == 100 && (b1 & 0xC0U) == 64)   // 100.64/10, carrier-grade NAT
         || (b0 == 169 && b1 == 254)            // link-local (cloud metadata)
         || (b0 == 172 && (b1 & 0xF0U) == 16)   // RFC 1918
         || (b0 == 192 && b1 == 168)            // RFC 1918
         || (b0 == 192 && b1 == 0 && a[2] == 0) // IETF protocol assignments
         || (b0 == 198 && (b1 & 0xFEU) == 18)   // benchmarking
         || b0 >= 224;                          // multicast, reserved, broadcast
}

} // namespace

bool valid_event_type(std::string_view type) {
  if (type.empty() || type.size() > max_type_length) {
    return false;
  }
  for (auto part : split(type, '.')) {
    if (part.empty() || !std::all_of(part.begin(), part.end(), segment_char)) {
      return false;
    }
  }
  return true;
}

bool valid_event_pattern(std::string_view pattern) {
  if (pattern == "*") {
    return true;
  }
  if (pattern.size() > 2 && pattern.substr(pattern.size() - 2) == ".*") {
    return valid_event_type(pattern.substr(0, pattern.size() - 2));
  }
  return valid_event_type(pattern);
}

bool pattern_matches(std::string_view pattern, std::string_view type) {
  if (pattern == "*") {
    return true;
  }
  if (pattern.size() > 2 && pattern.substr(pattern.size() - 2) == ".*") {
    const auto prefix = pattern.substr(0, pattern.size() - 1); // keeps the dot
    return type.size() > prefix.size() && type.substr(0, prefix.size()) == prefix;
  }
  return pattern == type;
}

bool subscribed(const std::vector<std::string>& patterns, std::string_view type) {
  if (patterns.empty()) {
    return true;
  }
  return std::any_of(patterns.begin(), patterns.end(),
                     [type](const std::string& p) { return pattern_matches(p, type); });
}

std::string make_secret() {
  return "whsec_" + crypto::base64(crypto::random_bytes(32));
}

std::optional<std::string> secret_key(std::string_view secret) {
  constexpr std::string_view prefix = "whsec_";
  if (secret.substr(0, prefix.size()) == prefix) {
    secret.remove_prefix(prefix.size());
  }
  auto key = crypto::unbase64(secret);
  if (!key || key->size() < 16 || key->size() > 64) {
    return std::nullopt;
  }
  return key;
}

std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp,
                 std::string_view body) {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content.append(id);
  content.push_back('.');
  content.append(std::to_string(timestamp));
  content.push_back('.');
  content.append(body);
  return "v1," + crypto::base64(crypto::hmac_sha256(key, content));
}

std::string signature_header(const std::vector<std::string>& keys, std::string_view id,
                             std::int64_t timestamp, std::string_view body) {
  std::string out;
  for (const auto& key : keys) {
    if (!out.empty()) {
      out.push_back(' ');
    }
    out += sign(key, id, timestamp, body);
  }
  return out;
}

const char* to_string(verdict v) {
  switch (v) {
  case verdict::ok:
    return "ok";
  case verdict::missing:
    return "the signature headers are missing";
  case verdict::malformed:
    return "the signature headers are malformed";
  case verdict::stale:
    return "the timestamp is outside the tolerance";
  case verdict::mismatch:
    return "no signature matches";
  }
  return "unknown";
}

verdict verify_standard(std::string_view secret, std::string_view id, std::string_view timestamp,
                        std::string_view signatures, std::string_view body, std::int64_t now_s,
                        std::int64_t tolerance_s) {
  if (id.empty() || timestamp.empty() || signatures.empty()) {
    return verdict::missing;
  }
  auto t = parse_unsigned(timestamp);
  auto key = secret_key(secret);
  if (!t || !key) {
    return verdict::malformed;
  }
  if (!within(*t, now_s, tolerance_s)) {
    return verdict::stale;
  }
  const auto expected = sign(*key, id, *t, body);
  bool matched = false;
  for (auto entry : split(signatures, ' ')) {
    // Every entry is compared (no early exit), each in constant time.
    if (!entry.empty() && crypto::constant_time_equal(entry, expected)) {
      matched = true;
    }
  }
  return matched ? verdict::ok : verdict::mismatch;
}

verdict verify_stripe(std::string_view secret, std::string_view header, std::string_view body,
                      std::int64_t now_s, std::int64_t tolerance_s) {
  header = trim(header);
  if (header.empty()) {
    return verdict::missing;
  }
  std::optional<std::int64_t> t;
  std::vector<std::string_view> v1;
  for (auto item : split(header, ',')) {
    item = trim(item);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      return verdict::malformed;
    }
    const auto name = item.substr(0, eq);
    const auto value = item.substr(eq + 1);
    if (name == "t") {
      t = parse_unsigned(value);
      if (!t) {
        return verdict::malformed;
      }
    } else if (name == "v1") {
      v1.push_back(value);
    }
  }
  if (!t) {
    return verdict::malformed;
  }
  if (v1.empty()) {
    return verdict::mismatch;
  }
  if (!within(*t, now_s, tolerance_s)) {
    return verdict::stale;
  }
  std::string content = std::to_string(*t);
  content.push_back('.');
  content.append(body);
  const auto expected = lower_hex_hmac(secret, content);
  bool matched = false;
  for (auto candidate : v1) {
    if (crypto::constant_time_equal(candidate, expected)) {
      matched = true;
    }
  }
  return matched ? verdict::ok : verdict::mismatch;
}

verdict verify_github(std::string_view secret, std::string_view header, std::string_view body) {
  header = trim(header);
  if (header.empty()) {
    return verdict::missing;
  }
  constexpr std::string_view prefix = "sha256=";
  if (header.substr(0, prefix.size()) != prefix) {
    return verdict::malformed;
  }
  const auto expected = lower_hex_hmac(secret, body);
  return crypto::constant_time_equal(header.substr(prefix.size()), expected) ? verdict::ok
                                                                             : verdict::mismatch;
}

std::optional<std::int64_t> retry_delay_ms(const std::vector<std::uint32_t>& schedule,
                                           std::uint32_t n, double unit) {
  if (n == 0 || n > schedule.size()) {
    return std::nullopt;
  }
  const double base = static_cast<double>(schedule[n - 1]) * 1000.0;
  const double jitter = base * 0.1 * (2.0 * std::clamp(unit, 0.0, 1.0) - 1.0);
  return static_cast<std::int64_t>(std::llround(base + jitter));
}

std::optional<std::int64_t> retry_after_s(std::string_view value, std::int64_t now_s) {
  value = trim(value);
  if (value.empty()) {
    return std::nullopt;
  }
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) {
      return max_retry_after_s;
    }
    auto seconds = parse_unsigned(value);
    return std::min(*seconds, max_retry_after_s);
  }
  // An IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string text{value};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  const std::int64_t at = timegm(&tm);
  return std::clamp<std::int64_t>(at - now_s, 0, max_retry_after_s);
}

attempt_outcome judge_attempt(int status, std::string_view retry_after, std::uint32_t n,
                              const std::vector<std::uint32_t>& schedule, double unit,
                              std::int64_t now_s) {
  if (status >= 200 && status < 300) {
    return {"succeeded", false, 0};
  }
  if (status == 410) {
    return {"failed", true, 0};
  }
  auto delay = retry_delay_ms(schedule, n, unit);
  if (!delay) {
    return {"failed", false, 0};
  }
  if (status == 429 || status == 502 || status == 503 || status == 504) {
    if (auto after = retry_after_s(retry_after, now_s)) {
      *delay = std::max(*delay, *after * 1000);
    }
  }
  return {"pending", false, *delay};
}

std::optional<target> parse_url(std::string_view url, std::string& error) {
  constexpr std::size_t max_length = 2048;
  if (url.size() > max_length) {
    error = "must be at most 2048 characters";
    return std::nullopt;
  }
  target out;
  std::string_view rest;
  if (url.substr(0, 8) == "https://") {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else {
    error = "must be an http:// or https:// URL";
    return std::nullopt;
  }
  if (std::any_of(url.begin(), url.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F;
      })) {
    error = "must not contain spaces or control or non-ASCII characters";
    return std::nullopt;
  }
  if (url.find('#') != std::string_view::npos) {
    error = "must not have a fragment";
    return std::nullopt;
  }
  const auto path_at = rest.find_first_of("/?");
  auto authority = rest.substr(0, path_at);
  out.path = path_at == std::string_view::npos ? "/" : std::string{rest.substr(path_at)};
  if (out.path.front() == '?') {
    out.path.insert(out.path.begin(), '/');
  }
  if (authority.find('@') != std::string_view::npos) {
    error = "must not carry user information";
    return std::nullopt;
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "has an unterminated IPv6 address";
      return std::nullopt;
    }
    out.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "has a malformed host";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    error = "must name a host";
    return std::nullopt;
  }
  for (auto& c : out.host) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    auto number = parse_unsigned(port);
    if (!number || *number < 1 || *number > 65535) {
      error = "has an invalid port";
      return std::nullopt;
    }
    out.port = std::to_string(*number);
  }
  return out;
}

bool forbidden_address(const unsigned char* bytes, std::size_t size) {
  if (size == 4) {
    return forbidden_v4(bytes);
  }
  if (size != 16) {
    return true;
  }
  const auto zero = [bytes](std::size_t from, std::size_t to) {
    return std::all_of(bytes + from, bytes + to, [](unsigned char b) { return b == 0; });
  };
  if (zero(0, 15) && (bytes[15] == 0 || bytes[15] == 1)) {
    return true; // :: and ::1
  }
  if (zero(0, 10) && bytes[10] == 0xFF && bytes[11] == 0xFF) {
    return forbidden_v4(bytes + 12); // IPv4-mapped
  }
  if (zero(0, 12)) {
    return true; // IPv4-compatible (deprecated)
  }
  if (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B && zero(4, 12)) {
    return forbidden_v4(bytes + 12); // NAT64 64:ff9b::/96
  }
  if (bytes[0] == 0x20 && bytes[1] == 0x02) {
    return forbidden_v4(bytes + 2); // 6to4 2002::/16
  }
  return (bytes[0] & 0xFEU) == 0xFC                          // unique local fc00::/7
         || bytes[0] == 0xFF                                 // multicast
         || (bytes[0] == 0xFE && (bytes[1] & 0xC0U) == 0x80) // link-local fe80::/10
         || (bytes[0] == 0xFE && (bytes[1] & 0xC0U) == 0xC0) // site-local fec0::/10
         || (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8);
}

} // namespace troupe::protocol::webhooks

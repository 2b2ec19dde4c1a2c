#pragma once

// The pure parts of events and webhooks (API.md "Events and outbound webhooks", "Inbound
// webhooks", docs/webhooks.md): event types and patterns, Standard Webhooks signing, the
// Stripe and GitHub verifiers, retry delays and the address guard. No I/O here.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::protocol::webhooks {

/// `^[a-z0-9_]+(\.[a-z0-9_]+)*$`, at most 200 characters.
bool valid_event_type(std::string_view type);

/// An event type, a prefix ending in `.*` (`order.*`), or `*`.
bool valid_event_pattern(std::string_view pattern);

/// True if `pattern` matches `type`: equal, `*`, or `p.*` where type starts with `p.`
/// (any number of further segments).
bool pattern_matches(std::string_view pattern, std::string_view type);

/// True if an endpoint subscribed to `patterns` (empty = every event) gets `type`.
bool subscribed(const std::vector<std::string>& patterns, std::string_view type);

/// A new endpoint secret: `whsec_` + base64 of 32 random bytes.
std::string make_secret();

/// The HMAC key of a `whsec_…` secret (base64 after the prefix; the prefix is optional);
/// nullopt if it is not base64 or decodes to fewer than 16 or more than 64 bytes.
std::optional<std::string> secret_key(std::string_view secret);

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` (Standard Webhooks).
std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp,
                 std::string_view body);

/// The `webhook-signature` header: one `v1,…` per key, separated by spaces.
std::string signature_header(const std::vector<std::string>& keys, std::string_view id,
                             std::int64_t timestamp, std::string_view body);

/// Why an inbound signature was refused (`ok` if it was not).
enum class verdict { ok, missing, malformed, stale, mismatch };

const char* to_string(verdict v);

/// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (any of its
/// space-separated `v1,` entries may match) with the secret `whsec_…`, the timestamp within
/// `tolerance_s` of `now_s` either way.
verdict verify_standard(std::string_view secret, std::string_view id, std::string_view timestamp,
                        std::string_view signatures, std::string_view body, std::int64_t now_s,
                        std::int64_t tolerance_s);

/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>[,v1=…]`,
/// the secret used as it is (`whsec_…` included), `t` within `tolerance_s` of `now_s`.
verdict verify_stripe(std::string_view secret, std::string_view header, std::string_view body,
                      std::int64_t now_s, std::int64_t tolerance_s);

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>` (no timestamp).
verdict verify_github(std::string_view secret, std::string_view header, std::string_view body);

/// The delay before attempt `n + 1` after attempt `n` failed (n ≥ 1), in milliseconds:
/// `schedule[n - 1]` seconds with ±10 % jitter (`unit` in [0, 1) picks it), or nullopt when
/// the schedule is spent (the delivery has failed).
std::optional<std::int64_t> retry_delay_ms(const std::vector<std::uint32_t>& schedule,
                                           std::uint32_t n, double unit);

/// The longest `Retry-After` honoured, in seconds (docs/webhooks.md).
inline constexpr std::int64_t max_retry_after_s = 3600;

/// A `Retry-After` value (delta-seconds or an HTTP-date, relative to `now_s`) in seconds,
/// bounded to [0, max_retry_after_s]; nullopt if it is unparsable.
std::optional<std::int64_t> retry_after_s(std::string_view value, std::int64_t now_s);

/// What one delivery attempt leads to (docs/webhooks.md "Outcome of an attempt").
struct attempt_outcome {
  std::string status;        ///< succeeded, pending (retried later) or failed
  bool gone = false;         ///< 410: the endpoint is to be disabled
  std::int64_t delay_ms = 0; ///< pending: when to try again, from now
};

/// Judges attempt `n` (1 = first) that answered `status` (0: no answer) with `retry_after`
/// (the header, or empty) at `now_s`: 2xx succeeded; 410 failed and gone; else a retry after
/// `retry_delay_ms` (`unit` picks the jitter), not before a 429/502/503/504's `Retry-After`,
/// or failed once the schedule is spent.
attempt_outcome judge_attempt(int status, std::string_view retry_after, std::uint32_t n,
                              const std::vector<std::uint32_t>& schedule, double unit,
                              std::int64_t now_s);

/// An outbound target: `http` or `https`, a host, a port and the request target.
struct target {
  bool tls = false;
  std::string host; ///< without brackets for IPv6 literals
  std::string port; ///< explicit or the scheme's default
  std::string path; ///< path and query, at least "/"
};

/// Parses an endpoint URL (http or https, no user info, no fragment, at most 2048
/// characters); nullopt + `error` if it is not one.
std::optional<target> parse_url(std::string_view url, std::string& error);

/// True if an address is one a webhook must not reach unless private targets are allowed:
/// unspecified, loopback, private (RFC 1918, unique local, CGNAT), link-local, multicast,
/// broadcast and reserved; IPv4-mapped, NAT64 and 6to4 IPv6 addresses are judged by the
/// IPv4 address inside. `bytes` is 4 (IPv4) or 16 (IPv6) bytes in network order.
bool forbidden_address(const unsigned char* bytes, std::size_t size);

} // namespace troupe::protocol::webhooks

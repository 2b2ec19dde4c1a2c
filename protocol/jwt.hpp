#pragma once

// EdDSA (Ed25519) JSON Web Tokens (RFC 7519, RFC 8037) and their JWKs: what access tokens
// are (API.md "Auth"). Keys are raw: a 32-byte private seed and a 32-byte public key.

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::protocol::jwt {

struct ed25519_key {
  std::string private_seed; ///< 32 bytes; empty for a public-only key
  std::string public_key;   ///< 32 bytes
};

/// A new key pair from OpenSSL's CSPRNG. Throws std::runtime_error if OpenSSL fails.
ed25519_key generate_ed25519();

/// The key pair of a 32-byte private seed (RFC 8032); nullopt if the seed is unusable.
std::optional<ed25519_key> ed25519_from_seed(std::string_view seed);

/// A compact JWS: header `{"alg":"EdDSA","typ":"JWT","kid":kid}`, `claims` as given.
std::string sign(const nlohmann::json& claims, std::string_view kid, const ed25519_key& key);

/// The Ed25519 signature of `message` (64 bytes).
std::string ed25519_sign(std::string_view message, std::string_view private_seed);

/// True if `signature` is `message`'s Ed25519 signature under `public_key`.
bool ed25519_verify(std::string_view message, std::string_view signature,
                    std::string_view public_key);

/// Why a token was refused.
enum class failure {
  malformed,     ///< not three base64url parts of JSON objects
  bad_algorithm, ///< alg is not EdDSA (none, HS256, ... are refused)
  unknown_key,   ///< no kid, or a kid we do not know
  bad_signature, ///< the signature does not verify
  wrong_issuer,  ///< iss is not ours
  expired,       ///< exp is not in the future
  not_yet_valid, ///< iat is in the future, beyond the allowed skew
};

const char* to_string(failure f);

/// A verified token's claims, or why it was refused.
struct verification {
  std::optional<failure> error;
  std::string claims; ///< the claims object as JSON text (when !error)
};

/// Verifies `token`: EdDSA only, a known `kid` (`public_key_of` answers its 32-byte public
/// key, or nullopt), the signature, `iss == issuer`, `exp > now`, `iat <= now + skew`.
verification
verify(std::string_view token,
       const std::function<std::optional<std::string>(std::string_view kid)>& public_key_of,
       std::string_view issuer, std::int64_t now, std::int64_t skew_seconds = 60);

/// The public JWK of a key (RFC 8037): kty OKP, crv Ed25519, x, kid, alg EdDSA, use sig.
nlohmann::json public_jwk(std::string_view kid, std::string_view public_key);

} // namespace troupe::protocol::jwt

#pragma once

// Small, safe wrappers over OpenSSL's EVP interface: digests, MACs, AES-256-GCM, randomness
// and the encodings the API uses. Byte strings are std::string (binary-safe).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::protocol::crypto {

/// SHA-256 of `data` (32 bytes).
std::string sha256(std::string_view data);

/// HMAC-SHA-256 of `data` under `key` (32 bytes).
std::string hmac_sha256(std::string_view key, std::string_view data);

/// HMAC-SHA-1 of `data` under `key` (20 bytes): TOTP (RFC 6238) and nothing else.
std::string hmac_sha1(std::string_view key, std::string_view data);

/// HKDF-SHA-256 (RFC 5869): `length` bytes derived from `key`, `salt` and `info`.
std::string hkdf_sha256(std::string_view key, std::string_view salt, std::string_view info,
                        std::size_t length);

/// `n` bytes from OpenSSL's CSPRNG. Throws std::runtime_error if it fails (it does not on Linux).
std::string random_bytes(std::size_t n);

/// AES-256-GCM with a random 96-bit nonce: returns nonce (12) ‖ ciphertext ‖ tag (16).
/// `key` must be 32 bytes; `aad` is authenticated, not encrypted.
std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad);

/// Reverses `seal`; nullopt if the key, the AAD or any byte is wrong.
std::optional<std::string> open(std::string_view key, std::string_view sealed,
                                std::string_view aad);

/// Equal lengths and equal bytes, in time independent of where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

/// The value of one hex digit (either case), or -1.
int hex_digit(char c);

/// Lower-case hexadecimal.
std::string hex(std::string_view bytes);

/// Reverses `hex` (either case); nullopt on an odd length or a non-hex digit.
std::optional<std::string> unhex(std::string_view text);

/// base64url without padding (RFC 4648 section 5).
std::string base64url(std::string_view bytes);

/// Reverses `base64url` (padding not accepted); nullopt on a character outside the alphabet
/// or an impossible length.
std::optional<std::string> unbase64url(std::string_view text);

/// base32 without padding (RFC 4648 section 6, upper case): TOTP secrets.
std::string base32(std::string_view bytes);

/// Reverses `base32`: case-insensitive, padding and spaces ignored; nullopt on bad input.
std::optional<std::string> unbase32(std::string_view text);

/// base64 with padding (RFC 4648 section 4).
std::string base64(std::string_view bytes);

/// Reverses `base64` (padding required); nullopt on bad input.
std::optional<std::string> unbase64(std::string_view text);

} // namespace troupe::protocol::crypto

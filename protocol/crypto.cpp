#include "protocol/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <array>
#include <memory>
#include <stdexcept>

namespace troupe::protocol::crypto {

namespace {

constexpr std::size_t nonce_size = 12;
constexpr std::size_t tag_size = 16;
constexpr std::size_t key_size = 32;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

cipher_ctx new_cipher_ctx() {
  return cipher_ctx{EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free};
}

constexpr std::string_view b64_alphabet
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view b64url_alphabet
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode64(std::string_view in, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const auto n = (std::uint32_t{static_cast<unsigned char>(in[i])} << 16)
                   | (std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8)
                   | std::uint32_t{static_cast<unsigned char>(in[i + 2])};
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
    out.push_back(alphabet[n & 63]);
  }
  const auto rest = in.size() - i;
  if (rest > 0) {
    auto n = std::uint32_t{static_cast<unsigned char>(in[i])} << 16;
    if (rest == 2) {
      n |= std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8;
    }
    out.push_back(alphabet[(n >> 18) & 63]);
    out.push_back(alphabet[(n >> 12) & 63]);
    if (rest == 2) {
      out.push_back(alphabet[(n >> 6) & 63]);
    }
    if (pad) {
      out.append(rest == 1 ? "==" : "=");
    }
  }
  return out;
}

std::optional<std::string> decode64(std::string_view in, std::string_view alphabet, bool pad) {
  if (pad) {
    if (in.size() % 4 != 0) {
      return std::nullopt;
    }
    std::size_t padding = 0;
    while (!in.empty() && in.back() == '=' && padding < 2) {
      in.remove_suffix(1);
      ++padding;
    }
  }
  if (in.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  // The value of each character: a table instead of a search (access tokens are decoded on
  // every request).
  const char c62 = alphabet[62];
  const char c63 = alphabet[63];
  for (const char c : in) {
    int pos = -1;
    if (c >= 'A' && c <= 'Z') {
      pos = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      pos = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      pos = c - '0' + 52;
    } else if (c == c62) {
      pos = 62;
    } else if (c == c63) {
      pos = 63;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // The unused low bits of the last character must be zero (canonical encoding).
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

} // namespace

std::string sha256(std::string_view data) {
  std::string digest(32, '\0');
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), bytes(digest), &length, EVP_sha256(), nullptr);
  return digest;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string mac(32, '\0');
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), bytes(mac),
       &length);
  return mac;
}

std::string hmac_sha1(std::string_view key, std::string_view data) {
  std::string mac(20, '\0');
  unsigned int length = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), bytes(mac),
       &length);
  return mac;
}

std::string hkdf_sha256(std::string_view key, std::string_view salt, std::string_view info,
                        std::size_t length) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx{
    EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr), &EVP_PKEY_CTX_free};
  std::string out(length, '\0');
  std::size_t out_length = length;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0
      || EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0
      || EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), bytes(salt), static_cast<int>(salt.size())) <= 0
      || EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), bytes(key), static_cast<int>(key.size())) <= 0
      || EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), bytes(info), static_cast<int>(info.size())) <= 0
      || EVP_PKEY_derive(ctx.get(), bytes(out), &out_length) <= 0 || out_length != length) {
    throw std::runtime_error("HKDF failed");
  }
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(bytes(out), static_cast<int>(n)) != 1) {
    throw std::runtime_error("the random generator failed");
  }
  return out;
}

std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad) {
  if (key.size() != key_size) {
    throw std::invalid_argument("AES-256-GCM needs a 32-byte key");
  }
  auto out = random_bytes(nonce_size);
  out.resize(nonce_size + plaintext.size() + tag_size);
  auto ctx = new_cipher_ctx();
  int length = 0;
  auto* cipher = bytes(out) + nonce_size;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(out)) != 1
      || EVP_EncryptUpdate(ctx.get(), nullptr, &length, bytes(aad), static_cast<int>(aad.size()))
           != 1
      || EVP_EncryptUpdate(ctx.get(), cipher, &length, bytes(plaintext),
                           static_cast<int>(plaintext.size()))
           != 1
      || EVP_EncryptFinal_ex(ctx.get(), cipher + length, &length) != 1
      || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_size),
                             cipher + plaintext.size())
           != 1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  return out;
}

std::optional<std::string> open(std::string_view key, std::string_view sealed,
                                std::string_view aad) {
  if (key.size() != key_size || sealed.size() < nonce_size + tag_size) {
    return std::nullopt;
  }
  const auto cipher = sealed.substr(nonce_size, sealed.size() - nonce_size - tag_size);
  std::string tag{sealed.substr(sealed.size() - tag_size)};
  std::string out(cipher.size(), '\0');
  auto ctx = new_cipher_ctx();
  int length = 0;
  if (!ctx
      || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(sealed)) != 1
      || EVP_DecryptUpdate(ctx.get(), nullptr, &length, bytes(aad), static_cast<int>(aad.size()))
           != 1
      || EVP_DecryptUpdate(ctx.get(), bytes(out), &length, bytes(cipher),
                           static_cast<int>(cipher.size()))
           != 1
      || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_size),
                             bytes(tag))
           != 1) {
    return std::nullopt;
  }
  int final_length = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), bytes(out) + length, &final_length) != 1) {
    return std::nullopt; // the tag does not match: wrong key, AAD or bytes
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hex(std::string_view in) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (const unsigned char c : in) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::optional<std::string> unhex(std::string_view text) {
  if (text.size() % 2 != 0) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = hex_digit(text[i]);
    const int lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string base64url(std::string_view in) {
  return encode64(in, b64url_alphabet, false);
}

std::optional<std::string> unbase64url(std::string_view text) {
  return decode64(text, b64url_alphabet, false);
}

std::string base32(std::string_view in) {
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const unsigned char c : in) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(alphabet[(buffer >> bits) & 31]);
    }
  }
  if (bits > 0) {
    out.push_back(alphabet[(buffer << (5 - bits)) & 31]);
  }
  return out;
}

std::optional<std::string> unbase32(std::string_view text) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char raw : text) {
    if (raw == '=' || raw == ' ') {
      continue;
    }
    const char c = static_cast<char>(raw >= 'a' && raw <= 'z' ? raw - 'a' + 'A' : raw);
    int value = -1;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= '2' && c <= '7') {
      value = c - '2' + 26;
    }
    if (value < 0) {
      return std::nullopt;
    }
    buffer = (buffer << 5) | static_cast<std::uint32_t>(value);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  return encode64(in, b64_alphabet, true);
}

std::optional<std::string> unbase64(std::string_view text) {
  return decode64(text, b64_alphabet, true);
}

} // namespace troupe::protocol::crypto

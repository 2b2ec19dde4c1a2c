#include "protocol/jwt.hpp"

#include "protocol/crypto.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace troupe::protocol::jwt {

namespace {

using json = nlohmann::json;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

pkey_ptr private_key(std::string_view seed) {
  return {EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, bytes(seed), seed.size()),
          &EVP_PKEY_free};
}

pkey_ptr public_key(std::string_view key) {
  return {EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(key), key.size()),
          &EVP_PKEY_free};
}

std::optional<ed25519_key> key_pair(const pkey_ptr& key) {
  if (!key) {
    return std::nullopt;
  }
  ed25519_key out;
  out.private_seed.resize(32);
  out.public_key.resize(32);
  std::size_t private_length = 32;
  std::size_t public_length = 32;
  if (EVP_PKEY_get_raw_private_key(
        key.get(), reinterpret_cast<unsigned char*>(out.private_seed.data()), &private_length)
        != 1
      || EVP_PKEY_get_raw_public_key(
           key.get(), reinterpret_cast<unsigned char*>(out.public_key.data()), &public_length)
           != 1
      || private_length != 32 || public_length != 32) {
    return std::nullopt;
  }
  return out;
}

std::optional<json> json_object(std::string_view base64url_text) {
  auto text = crypto::unbase64url(base64url_text);
  if (!text) {
    return std::nullopt;
  }
  auto value = json::parse(*text, nullptr, false);
  if (value.is_discarded() || !value.is_object()) {
    return std::nullopt;
  }
  return value;
}

} // namespace

ed25519_key generate_ed25519() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx{
    EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), &EVP_PKEY_CTX_free};
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    throw std::runtime_error("Ed25519 key generation failed");
  }
  auto pair = key_pair(pkey_ptr{raw, &EVP_PKEY_free});
  if (!pair) {
    throw std::runtime_error("Ed25519 key export failed");
  }
  return *pair;
}

std::optional<ed25519_key> ed25519_from_seed(std::string_view seed) {
  if (seed.size() != 32) {
    return std::nullopt;
  }
  return key_pair(private_key(seed));
}

std::string ed25519_sign(std::string_view message, std::string_view private_seed) {
  auto key = private_key(private_seed);
  md_ctx_ptr ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  std::string signature(64, '\0');
  std::size_t length = signature.size();
  if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1
      || EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                        bytes(message), message.size())
           != 1
      || length != 64) {
    throw std::runtime_error("Ed25519 signing failed");
  }
  return signature;
}

bool ed25519_verify(std::string_view message, std::string_view signature,
                    std::string_view key_bytes) {
  if (signature.size() != 64 || key_bytes.size() != 32) {
    return false;
  }
  auto key = public_key(key_bytes);
  md_ctx_ptr ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  return key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1
         && EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(message),
                             message.size())
              == 1;
}

std::string sign(const json& claims, std::string_view kid, const ed25519_key& key) {
  const json header{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", std::string{kid}}};
  auto input = crypto::base64url(header.dump()) + "." + crypto::base64url(claims.dump());
  const auto signature = ed25519_sign(input, key.private_seed);
  return input + "." + crypto::base64url(signature);
}

const char* to_string(failure f) {
  switch (f) {
  case failure::malformed:
    return "malformed";
  case failure::bad_algorithm:
    return "bad_algorithm";
  case failure::unknown_key:
    return "unknown_key";
  case failure::bad_signature:
    return "bad_signature";
  case failure::wrong_issuer:
    return "wrong_issuer";
  case failure::expired:
    return "expired";
  case failure::not_yet_valid:
    return "not_yet_valid";
  }
  return "malformed";
}

verification
verify(std::string_view token,
       const std::function<std::optional<std::string>(std::string_view)>& public_key_of,
       std::string_view issuer, std::int64_t now, std::int64_t skew_seconds) {
  verification v;
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos
      || token.find('.', second + 1) != std::string_view::npos) {
    v.error = failure::malformed;
    return v;
  }
  auto header = json_object(token.substr(0, first));
  auto claims = json_object(token.substr(first + 1, second - first - 1));
  auto signature = crypto::unbase64url(token.substr(second + 1));
  if (!header || !claims || !signature) {
    v.error = failure::malformed;
    return v;
  }
  // The algorithm is ours to choose, never the token's: anything but EdDSA is refused.
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || *alg != "EdDSA") {
    v.error = failure::bad_algorithm;
    return v;
  }
  const auto kid = header->find("kid");
  std::optional<std::string> key;
  if (kid != header->end() && kid->is_string()) {
    key = public_key_of(kid->get_ref<const std::string&>());
  }
  if (!key) {
    v.error = failure::unknown_key;
    return v;
  }
  if (!ed25519_verify(token.substr(0, second), *signature, *key)) {
    v.error = failure::bad_signature;
    return v;
  }
  const auto iss = claims->find("iss");
  if (iss == claims->end() || !iss->is_string() || *iss != issuer) {
    v.error = failure::wrong_issuer;
    return v;
  }
  const auto exp = claims->find("exp");
  if (exp == claims->end() || !exp->is_number_integer() || exp->get<std::int64_t>() <= now) {
    v.error = failure::expired;
    return v;
  }
  const auto iat = claims->find("iat");
  if (iat != claims->end()
      && (!iat->is_number_integer() || iat->get<std::int64_t>() > now + skew_seconds)) {
    v.error = failure::not_yet_valid;
    return v;
  }
  v.claims = claims->dump();
  return v;
}

json public_jwk(std::string_view kid, std::string_view key) {
  return {
    {"kty", "OKP"},   {"crv", "Ed25519"}, {"x", crypto::base64url(key)}, {"kid", std::string{kid}},
    {"alg", "EdDSA"}, {"use", "sig"}};
}

} // namespace troupe::protocol::jwt

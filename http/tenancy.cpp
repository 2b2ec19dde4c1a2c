#include "http/tenancy.hpp"

#include "http/ask.hpp"
#include "protocol/auth.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"

#include <caf/actor_registry.hpp>
#include <caf/send.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace troupe::http {

std::optional<std::string> tenant_key(const request& req, std::string_view base_domain) {
  if (const auto named = req.header("X-Tenant"); !named.empty()) {
    return std::string{named};
  }
  auto host = req.header("Host");
  if (host.empty() || host.front() == '[') {
    return std::nullopt; // no Host, or an IPv6 literal: no subdomain
  }
  host = host.substr(0, host.find(':'));
  const auto name = ascii_lower(host);
  const auto suffix = "." + ascii_lower(base_domain);
  if (base_domain.empty() || name.size() <= suffix.size()
      || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  auto slug = name.substr(0, name.size() - suffix.size());
  if (slug.find('.') != std::string::npos) {
    return std::nullopt; // a deeper subdomain is not a tenant
  }
  return slug;
}

protocol::credential credential_of(const request& req, const std::string& admin_digest) {
  protocol::credential c;
  const auto authorization = req.header("Authorization");
  if (authorization.empty()) {
    return c;
  }
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() <= scheme.size()
      || !iequals(authorization.substr(0, scheme.size()), scheme)) {
    c.kind = "invalid";
    return c;
  }
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  // Fixed-length digests compared in constant time: neither length nor content leaks.
  if (admin_digest.size() == 32
      && protocol::crypto::constant_time_equal(protocol::crypto::sha256(token), admin_digest)) {
    c.kind = "admin";
    return c;
  }
  c.token = std::string{token};
  if (token.rfind("trp_", 0) == 0) {
    c.kind = "api_key";
  } else if (std::count(token.begin(), token.end(), '.') == 2) {
    c.kind = "jwt";
  } else {
    c.kind = "invalid";
  }
  return c;
}

std::optional<std::string> credential_tenant(const request& req, const protocol::credential& c) {
  if (c.kind == "jwt") {
    const auto first = c.token.find('.');
    const auto second = c.token.find('.', first + 1);
    auto payload = protocol::crypto::unbase64url(
      std::string_view{c.token}.substr(first + 1, second - first - 1));
    if (!payload) {
      return std::nullopt;
    }
    // Our tokens are compact JSON: find the claim without parsing (every request without
    // X-Tenant does this); anything else gets the full parse.
    constexpr std::string_view tid_member = "\"tid\":\"";
    if (const auto at = payload->find(tid_member); at != std::string::npos) {
      const auto begin = at + tid_member.size();
      if (payload->size() > begin + 36 && (*payload)[begin + 36] == '"') {
        auto tid = payload->substr(begin, 36);
        if (protocol::is_uuid(tid)) {
          return tid;
        }
      }
    }
    auto claims = nlohmann::json::parse(*payload, nullptr, false);
    if (claims.is_object()) {
      if (auto tid = claims.find("tid");
          tid != claims.end() && tid->is_string() && protocol::is_uuid(tid->get<std::string>())) {
        return tid->get<std::string>();
      }
    }
    return std::nullopt;
  }
  const char* field = req.path == "/v1/auth/refresh"      ? "refresh_token"
                      : req.path == "/v1/auth/mfa/verify" ? "mfa_token"
                                                          : nullptr;
  if (field == nullptr || req.method != verb::post || req.body.size() > 4096) {
    return std::nullopt;
  }
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    return std::nullopt;
  }
  auto token = body.find(field);
  if (token == body.end() || !token->is_string()) {
    return std::nullopt;
  }
  auto ids = protocol::opaque_token_ids(token->get<std::string>());
  if (!ids) {
    return std::nullopt;
  }
  return ids->first;
}

namespace {

tenant_resolution failure(protocol::errc code, std::string detail, protocol::rate_info rate = {}) {
  tenant_resolution r;
  r.error = code;
  r.detail = std::move(detail);
  r.rate = std::move(rate);
  return r;
}

void authenticate(caf::actor_system& sys, std::string key, protocol::credential c,
                  bool key_from_credential, const std::function<void(tenant_resolution)>& done) {
  auto dir = sys.registry().get<protocol::directory_actor>(protocol::directory_key);
  // The hot path of every /v1 request: a callback in the message instead of a requester
  // actor (docs/performance.md "Authenticated requests"). A dropped message still answers.
  protocol::auth_callback answer{
    [done, key_from_credential](caf::expected<protocol::authenticated> found) {
      if (found && !found->rate.allowed) {
        done(failure(protocol::errc::rate_limited,
                     "too many requests for the " + found->rate.bucket + " limit; retry after "
                       + std::to_string(found->rate.reset_s) + " s",
                     std::move(found->rate)));
        return;
      }
      if (found && found->rate.quota_exceeded) {
        done(failure(protocol::errc::quota_exceeded, "the tenant's monthly request quota is spent",
                     std::move(found->rate)));
        return;
      }
      if (found) {
        done({found->tenant.id, std::move(found->who), std::move(found->tenant.settings),
              protocol::errc::internal, "", std::move(found->rate)});
        return;
      }
      const auto code = protocol::to_errc(found.error());
      std::string detail;
      if (code == protocol::errc::not_found) {
        if (key_from_credential) {
          // An unverified hint from a token that named no live tenant: the token is bad.
          done(failure(protocol::errc::unauthenticated, "invalid credential"));
          return;
        }
        detail = "no tenant has this slug or id";
      } else if (code == protocol::errc::tenant_suspended) {
        detail = "the tenant is suspended";
      } else if (code == protocol::errc::tenant_mismatch) {
        detail = "the credential belongs to another tenant";
      }
      done(failure(code, detail));
    }};
  if (!dir) {
    answer(caf::make_error(protocol::errc::service_unavailable, "directory away"));
    return;
  }
  caf::anon_send(dir, protocol::authenticate_atom_v, std::move(key), std::move(c),
                 std::move(answer));
}

// POST /v1/inbound/{source} without a credential: the source names its rate-limit bucket.
void mark_inbound(const request& req, protocol::credential& c) {
  constexpr std::string_view prefix = "/v1/inbound/";
  if (req.method != verb::post || req.path.size() <= prefix.size()
      || req.path.compare(0, prefix.size(), prefix) != 0) {
    return;
  }
  auto source = std::string_view{req.path}.substr(prefix.size());
  if (source.size() > 64 || source.find('/') != std::string_view::npos) {
    return;
  }
  c.kind = "inbound";
  c.token = std::string{source};
}

} // namespace

tenant_resolver directory_resolver(caf::actor_system& sys, std::string base_domain,
                                   std::string admin_digest) {
  auto* system = &sys;
  return [system, base_domain = std::move(base_domain), admin_digest = std::move(admin_digest)](
           const request& req, const std::function<void(tenant_resolution)>& done) {
    auto c = credential_of(req, admin_digest);
    c.ip = req.remote;
    if (c.kind.empty()) {
      mark_inbound(req, c);
    }
    if (auto key = tenant_key(req, base_domain)) {
      authenticate(*system, std::move(*key), std::move(c), false, done);
      return;
    }
    if (auto hinted = credential_tenant(req, c)) {
      authenticate(*system, std::move(*hinted), std::move(c), true, done);
      return;
    }
    if (c.kind == "api_key") {
      auto auth = system->registry().get<protocol::auth_actor>(protocol::auth_key);
      ask<std::string>(
        *system, auth, ask_timeout,
        [system, c, done](caf::expected<std::string> tenant) {
          if (!tenant) {
            const auto code = protocol::to_errc(tenant.error());
            done(
              failure(code, code == protocol::errc::unauthenticated ? "invalid credential" : ""));
            return;
          }
          authenticate(*system, std::move(*tenant), c, true, done);
        },
        protocol::resolve_atom_v, c);
      return;
    }
    if (c.kind == "jwt" || c.kind == "invalid") {
      done(failure(protocol::errc::unauthenticated, "invalid credential"));
      return;
    }
    done(failure(protocol::errc::unauthenticated, "name the tenant: X-Tenant, the host {slug}."
                                                    + base_domain + ", or a credential"));
  };
}

} // namespace troupe::http

#include "http/tenancy.hpp"

#include "http/ask.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>

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

tenant_resolver directory_resolver(caf::actor_system& sys, std::string base_domain) {
  auto* system = &sys;
  return [system, base_domain = std::move(base_domain)](
           const request& req, const std::function<void(tenant_resolution)>& done) {
    auto key = tenant_key(req, base_domain);
    if (!key) {
      done({"", protocol::errc::unauthenticated,
            "name the tenant: X-Tenant, the host {slug}." + base_domain + ", or a credential"});
      return;
    }
    auto dir = system->registry().get<protocol::directory_actor>(protocol::directory_key);
    ask<protocol::tenant_record>(
      *system, dir, ask_timeout,
      [done](caf::expected<protocol::tenant_record> record) {
        if (record) {
          done({record->id, protocol::errc::internal, ""});
          return;
        }
        const auto code = protocol::to_errc(record.error());
        std::string detail;
        if (code == protocol::errc::not_found) {
          detail = "no tenant has this slug or id";
        } else if (code == protocol::errc::tenant_suspended) {
          detail = "the tenant is suspended";
        }
        done({"", code, detail});
      },
      protocol::resolve_atom_v, std::move(*key));
  };
}

} // namespace troupe::http

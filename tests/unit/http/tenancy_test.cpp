#define CAF_SUITE http.tenancy

#include "http/tenancy.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::http;

namespace {

request with(std::initializer_list<std::pair<std::string, std::string>> headers) {
  request req;
  for (const auto& h : headers) {
    req.headers.emplace_back(h.first, h.second);
  }
  return req;
}

} // namespace

CAF_TEST(x tenant names the tenant by slug or id) {
  CAF_CHECK_EQUAL(tenant_key(with({{"X-Tenant", "acme"}}), "localhost").value_or(""), "acme");
  CAF_CHECK_EQUAL(
    tenant_key(with({{"x-tenant", "0190a3c4-0000-7000-8000-000000000001"}}), "localhost")
      .value_or(""),
    "0190a3c4-0000-7000-8000-000000000001");
}

CAF_TEST(x tenant wins over the host) {
  CAF_CHECK_EQUAL(
    tenant_key(with({{"Host", "other.localhost"}, {"X-Tenant", "acme"}}), "localhost").value_or(""),
    "acme");
}

CAF_TEST(the host subdomain names the tenant whatever the port and case) {
  CAF_CHECK_EQUAL(tenant_key(with({{"Host", "acme.localhost"}}), "localhost").value_or(""), "acme");
  CAF_CHECK_EQUAL(tenant_key(with({{"Host", "Acme.Example.COM:8443"}}), "example.com").value_or(""),
                  "acme");
}

CAF_TEST(hosts that are not a tenant subdomain name nothing) {
  for (const char* host : {"localhost", "example.com", "a.b.example.com", "evil-example.com",
                           "[::1]:8080", "127.0.0.1:8080", ".example.com", "example.com.evil"}) {
    CAF_CHECK(!tenant_key(with({{"Host", host}}), "example.com"));
  }
  CAF_CHECK(!tenant_key(with({}), "example.com"));
}

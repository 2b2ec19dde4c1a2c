// Users and RBAC (issue 6): what the effective-permission check costs on the request path.
// The guard of every /v1 route calls protocol::permits() with the principal's effective
// permissions (computed once per user by the tenant actor, then cached); this measures both
// the check per request and the computation per cache miss, single-threaded, in ns.
//   build/bin/troupe_bench_rbac [iterations]

#include "protocol/principal.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace troupe::protocol;

namespace {

volatile bool sink = false;

template <class F>
double ns_per_call(std::size_t n, F f) {
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    f(i);
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(n);
}

} // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2000000;
  // 50 custom roles in chains of 5 (each inherits the previous one and viewer).
  role_catalog custom;
  const auto& catalogue = permission_catalogue();
  for (int i = 0; i < 50; ++i) {
    role_definition r;
    r.permissions = {catalogue[static_cast<std::size_t>(i) % catalogue.size()]};
    if (i % 5 != 0) {
      r.inherits = {"role" + std::to_string(i - 1)};
    } else {
      r.inherits = {"viewer"};
    }
    custom["role" + std::to_string(i)] = r;
  }
  struct principal_case {
    const char* name;
    std::vector<std::string> permissions;
  };
  std::vector<principal_case> cases{
    {"owner (*)", effective_permissions({"owner"}, custom)},
    {"admin (15)", effective_permissions({"admin"}, custom)},
    {"member (5, wildcard)", effective_permissions({"member"}, custom)},
    {"3 custom roles", effective_permissions({"role4", "role9", "role14"}, custom)},
  };
  std::printf("rbac check: ns per permits() call, %zu calls each (a hit, then a miss)\n", n);
  for (const auto& c : cases) {
    const auto hit
      = ns_per_call(n, [&](std::size_t) { sink = permits(c.permissions, "users:read"); });
    const auto miss
      = ns_per_call(n, [&](std::size_t) { sink = permits(c.permissions, "tenant:admin"); });
    std::printf("  %-22s perms=%-3zu hit=%6.1f ns  miss=%6.1f ns\n", c.name, c.permissions.size(),
                hit, miss);
  }
  const std::size_t m = n / 20;
  const auto builtin = ns_per_call(m, [&](std::size_t) {
    sink = effective_permissions({"admin", "member"}, custom).empty();
  });
  const auto deep = ns_per_call(m, [&](std::size_t) {
    sink = effective_permissions({"role4", "role9", "role14"}, custom).empty();
  });
  std::printf("rbac effective permissions (per user load): built-in 2 roles=%.0f ns  "
              "3 custom roles, inheritance depth 5=%.0f ns\n",
              builtin, deep);
  return 0;
}

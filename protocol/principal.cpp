#include "protocol/principal.hpp"

#include "protocol/crypto.hpp"
#include "protocol/request_id.hpp"

#include <algorithm>
#include <set>

namespace troupe::protocol {

namespace {

std::string uuid_bytes(const std::string& uuid) {
  std::string hex;
  for (char c : uuid) {
    if (c != '-') {
      hex.push_back(c);
    }
  }
  return crypto::unhex(hex).value_or(std::string(16, '\0'));
}

std::string uuid_text(std::string_view bytes) {
  auto hex = crypto::hex(bytes);
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-'
         + hex.substr(16, 4) + '-' + hex.substr(20);
}

} // namespace

std::string make_opaque_token(const std::string& tenant_id, const std::string& id) {
  return crypto::base64url(uuid_bytes(tenant_id) + uuid_bytes(id) + crypto::random_bytes(32));
}

std::optional<std::pair<std::string, std::string>> opaque_token_ids(std::string_view token) {
  if (token.size() != 86) {
    return std::nullopt;
  }
  auto raw = crypto::unbase64url(token);
  if (!raw || raw->size() != 64) {
    return std::nullopt;
  }
  auto tenant = uuid_text(std::string_view{*raw}.substr(0, 16));
  auto id = uuid_text(std::string_view{*raw}.substr(16, 16));
  if (!is_uuid(tenant) || !is_uuid(id)) {
    return std::nullopt;
  }
  return std::make_pair(std::move(tenant), std::move(id));
}

const std::vector<std::string>& permission_catalogue() {
  static const std::vector<std::string> catalogue{
    "users:read",       "users:write",    "roles:read",        "roles:write",
    "records:read",     "records:write",  "collections:write", "events:publish",
    "webhooks:read",    "webhooks:write", "jobs:read",         "jobs:write",
    "functions:invoke", "audit:read",     "api_keys:write",    "tenant:admin"};
  return catalogue;
}

bool permits(const std::vector<std::string>& granted, const std::string& wanted) {
  const auto colon = wanted.find(':');
  // "records:*" is also held by whoever holds every records permission of the catalogue.
  if (colon != std::string::npos && wanted.size() == colon + 2 && wanted.back() == '*') {
    bool any = false;
    bool all = true;
    for (const auto& p : permission_catalogue()) {
      if (p.compare(0, colon + 1, wanted, 0, colon + 1) == 0) {
        any = true;
        all = all && permits(granted, p);
      }
    }
    if (any && all) {
      return true;
    }
  }
  for (const auto& g : granted) {
    if (g == "*" || g == wanted) {
      return true;
    }
    // "records:*" covers "records:read" and "records:*".
    if (colon != std::string::npos && g.size() == colon + 2 && g.back() == '*'
        && g.compare(0, colon + 1, wanted, 0, colon + 1) == 0) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> builtin_permissions(const std::vector<std::string>& roles) {
  std::set<std::string> out;
  for (const auto& role : roles) {
    if (role == "owner") {
      out.insert("*");
    } else if (role == "admin") {
      for (const auto& p : permission_catalogue()) {
        if (p != "tenant:admin") {
          out.insert(p);
        }
      }
    } else if (role == "member") {
      out.insert({"records:*", "events:publish", "jobs:read", "functions:invoke", "users:read"});
    } else if (role == "viewer") {
      for (const auto& p : permission_catalogue()) {
        if (p.size() > 5 && p.compare(p.size() - 5, 5, ":read") == 0 && p != "audit:read") {
          out.insert(p);
        }
      }
    }
  }
  return {out.begin(), out.end()};
}

bool is_builtin_role(const std::string& name) {
  return name == "owner" || name == "admin" || name == "member" || name == "viewer";
}

std::vector<std::string> effective_permissions(const std::vector<std::string>& roles,
                                               const role_catalog& custom) {
  std::set<std::string> out;
  std::set<std::string> seen;
  std::vector<std::string> todo(roles.begin(), roles.end());
  while (!todo.empty()) {
    auto name = std::move(todo.back());
    todo.pop_back();
    if (!seen.insert(name).second) {
      continue;
    }
    if (is_builtin_role(name)) {
      for (auto& p : builtin_permissions({name})) {
        out.insert(std::move(p));
      }
      continue;
    }
    auto i = custom.find(name);
    if (i == custom.end()) {
      continue;
    }
    out.insert(i->second.permissions.begin(), i->second.permissions.end());
    todo.insert(todo.end(), i->second.inherits.begin(), i->second.inherits.end());
  }
  return {out.begin(), out.end()};
}

bool inherits_cycle(const std::string& name, const std::vector<std::string>& inherits,
                    const role_catalog& custom) {
  // A cycle through `name` means `name` is reachable from one of its new parents.
  std::set<std::string> seen;
  std::vector<std::string> todo(inherits.begin(), inherits.end());
  while (!todo.empty()) {
    auto current = std::move(todo.back());
    todo.pop_back();
    if (current == name) {
      return true;
    }
    if (!seen.insert(current).second) {
      continue;
    }
    if (auto i = custom.find(current); i != custom.end()) {
      todo.insert(todo.end(), i->second.inherits.begin(), i->second.inherits.end());
    }
  }
  return false;
}

bool valid_permission(const std::string& p) {
  if (p == "*") {
    return true;
  }
  for (const auto& known : permission_catalogue()) {
    if (p == known) {
      return true;
    }
    const auto colon = known.find(':');
    if (p.size() == colon + 2 && p.back() == '*'
        && p.compare(0, colon + 1, known, 0, colon + 1) == 0) {
      return true;
    }
  }
  return false;
}

} // namespace troupe::protocol

#include "protocol/tenants.hpp"

#include <nlohmann/json.hpp>

namespace troupe::protocol {

nlohmann::json tenant_json(const tenant_record& t) {
  using json = nlohmann::json;
  json body{{"id", t.id},
            {"slug", t.slug},
            {"name", t.name},
            {"plan", t.plan},
            {"status", t.status},
            {"limits", json::parse(t.limits, nullptr, false)},
            {"settings", json::parse(t.settings, nullptr, false)},
            {"created_at", t.created_at}};
  if (!t.owner_id.empty()) {
    body["owner"] = {{"id", t.owner_id}, {"email", t.owner_email}};
  }
  return body;
}

} // namespace troupe::protocol

#define CAF_SUITE http.openapi

#include "http/routes.hpp"
#include "protocol/errc.hpp"
#include "protocol/principal.hpp"

#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

using namespace troupe;

namespace {

nlohmann::json document() {
  return nlohmann::json::parse(http::openapi_document(), nullptr, false);
}

std::string lower(std::string_view s) {
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

} // namespace

CAF_TEST(the embedded document is openapi 3.1 json) {
  auto doc = document();
  CAF_REQUIRE(!doc.is_discarded());
  CAF_CHECK(doc["openapi"].get<std::string>().rfind("3.1.", 0) == 0);
  CAF_CHECK(doc["info"].contains("title"));
  CAF_CHECK(doc["info"].contains("version"));
  CAF_CHECK(doc["paths"].is_object());
}

CAF_TEST(every route is documented and every documented operation is routed) {
  auto doc = document();
  http::services svc;
  auto routes = http::make_router(svc);
  std::set<std::pair<std::string, std::string>> routed;
  for (const auto& r : routes->routes()) {
    routed.emplace(r.path_template, lower(http::to_string(r.method)));
  }
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      static const std::set<std::string> methods{"get",     "put",  "post",  "delete",
                                                 "options", "head", "patch", "trace"};
      if (methods.count(method) == 0) {
        continue; // path-level "parameters", "summary", ...
      }
      documented.emplace(path, method);
      CAF_CHECK(op.contains("operationId"));
      CAF_CHECK(op.contains("x-troupe-permission"));
      CAF_CHECK(op.contains("responses"));
    }
  }
  for (const auto& entry : routed) {
    CAF_CHECK(documented.count(entry) == 1);
    if (documented.count(entry) == 0) {
      CAF_MESSAGE("undocumented route: " << entry.second << " " << entry.first);
    }
  }
  for (const auto& entry : documented) {
    CAF_CHECK(routed.count(entry) == 1);
    if (routed.count(entry) == 0) {
      CAF_MESSAGE("documented but not routed: " << entry.second << " " << entry.first);
    }
  }
}

CAF_TEST(every internal reference resolves) {
  auto doc = document();
  std::vector<std::string> refs;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& node) {
    if (node.is_object()) {
      for (const auto& [key, value] : node.items()) {
        if (key == "$ref" && value.is_string()) {
          refs.push_back(value.get<std::string>());
        } else {
          walk(value);
        }
      }
    } else if (node.is_array()) {
      for (const auto& value : node) {
        walk(value);
      }
    }
  };
  walk(doc);
  CAF_CHECK(!refs.empty());
  for (const auto& ref : refs) {
    CAF_REQUIRE(ref.rfind("#/", 0) == 0);
    nlohmann::json::json_pointer pointer{ref.substr(1)};
    CAF_CHECK(doc.contains(pointer));
  }
}

CAF_TEST(the problem code enum lists the whole catalogue) {
  auto doc = document();
  std::set<std::string> documented;
  for (const auto& code : doc["components"]["schemas"]["ProblemCode"]["enum"]) {
    documented.insert(code.get<std::string>());
  }
  std::set<std::string> known;
  for (const auto& entry : protocol::catalogue()) {
    known.insert(std::string{entry.name});
  }
  CAF_CHECK(documented == known);
}

CAF_TEST(every route declares one requirement and the document shows it) {
  auto doc = document();
  http::services svc;
  auto routes = http::make_router(svc);
  const auto& catalogue = protocol::permission_catalogue();
  std::size_t tenant_routes = 0;
  for (const auto& r : routes->routes()) {
    const auto name = std::string{http::to_string(r.method)} + " " + r.path_template;
    const auto& p = r.permission;
    const bool tenant = r.path_template.rfind("/v1/", 0) == 0;
    if (tenant) {
      ++tenant_routes;
      const bool known = p == "public" || p == "self" || p == "self|users:write"
                         || std::find(catalogue.begin(), catalogue.end(), p) != catalogue.end();
      CAF_CHECK(known);
      if (!known) {
        CAF_MESSAGE("tenant route without a valid requirement: " << name << " -> " << p);
      }
    } else {
      CAF_CHECK(p == "public" || p == "admin");
    }
    const auto& op = doc["paths"][r.path_template][lower(http::to_string(r.method))];
    CAF_CHECK_EQUAL(op.value("x-troupe-permission", std::string{}), p);
  }
  CAF_CHECK_GREATER(tenant_routes, 20u);
}

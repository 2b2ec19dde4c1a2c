// The worked example of docs/feature-actors.md: a function that stores the caller's dashboard
// layout in a tenant table, and one that reads it back. Everything a feature needs is in
// actors/features/features.hpp.

#include "actors/features/features.hpp"
#include "actors/functions/functions.hpp"

#include <caf/event_based_actor.hpp>

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using features::invocation;
using features::outcome;

// The SQL runs in a transaction of the caller's tenant: row-level security adds the tenant.
constexpr storage::pg_statement save_sql{
  "dashboard_save",
  "INSERT INTO dashboard_layouts (tenant_id, user_id, layout) VALUES (troupe_current_tenant(), "
  "$1::uuid, $2::jsonb) ON CONFLICT (tenant_id, user_id) DO UPDATE SET layout = EXCLUDED.layout, "
  "version = dashboard_layouts.version + 1, updated_at = now() RETURNING version, "
  "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"};
constexpr storage::pg_statement load_sql{
  "dashboard_load",
  "SELECT layout::text, version, to_char(updated_at AT TIME ZONE 'UTC', "
  "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM dashboard_layouts WHERE user_id = $1::uuid"};

// The parameters, checked before the actor is spawned: a bad call is a 400 with pointers.
const json& layout_schema() {
  static const json schema = json::parse(R"({
    "type": "object",
    "properties": {
      "layout": {
        "type": "object",
        "properties": {
          "columns": {"type": "integer", "minimum": 1, "maximum": 12},
          "widgets": {
            "type": "array", "maxItems": 50,
            "items": {
              "type": "object",
              "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "x": {"type": "integer", "minimum": 0},
                "y": {"type": "integer", "minimum": 0},
                "w": {"type": "integer", "minimum": 1},
                "h": {"type": "integer", "minimum": 1}
              },
              "required": ["id", "x", "y", "w", "h"],
              "additionalProperties": false
            }
          }
        },
        "required": ["columns", "widgets"],
        "additionalProperties": false
      }
    },
    "required": ["layout"],
    "additionalProperties": false
  })");
  return schema;
}

// Layouts belong to users: an API key acts for the user who created it, the admin token for
// nobody.
std::string owner_of(const invocation& in) {
  return in.caller.user_id;
}

caf::behavior save_layout(caf::event_based_actor* self) {
  return {
    [self](invocation& in) -> caf::result<outcome> {
      const auto user = owner_of(in);
      if (user.empty()) {
        return outcome::failure("a dashboard layout belongs to a user: call with a user's token",
                                protocol::errc::bad_request);
      }
      // A check the schema cannot express: widgets must fit in the columns.
      const auto columns = in.params["layout"]["columns"].get<int>();
      const auto& widgets = in.params["layout"]["widgets"];
      for (std::size_t i = 0; i < widgets.size(); ++i) {
        if (widgets[i]["x"].get<int>() + widgets[i]["w"].get<int>() > columns) {
          return outcome::invalid("/layout/widgets/" + std::to_string(i),
                                  "must fit in the layout's columns (x + w <= columns)");
        }
      }
      auto rp = self->make_response_promise<outcome>();
      auto layout = in.params["layout"];
      // Audited: the entry is written in the same transaction as the layout.
      features::audited(
        self, in, "dashboard.layout_saved",
        [user, layout](storage::pg_transaction& tx,
                       protocol::audit_change& change) -> caf::expected<json> {
          auto rows = tx.execute(save_sql, {user, layout.dump()});
          if (!rows) {
            return std::move(rows.error());
          }
          change.resource_type = "dashboard_layout";
          change.resource_id = user;
          change.after = json{{"widgets", layout["widgets"].size()}};
          return json{{"user_id", user},
                      {"layout", layout},
                      {"version", std::stoi(std::string{rows->get(0, 0)})},
                      {"updated_at", rows->get(0, 1)}};
        },
        [rp](caf::expected<json> saved) mutable {
          rp.deliver(saved ? outcome::success(std::move(*saved))
                           : outcome::failure("the layout could not be saved"));
        });
      return rp;
    },
  };
}

caf::behavior get_layout(caf::event_based_actor* self) {
  return {
    [self](invocation& in) -> caf::result<outcome> {
      const auto user = owner_of(in);
      if (user.empty()) {
        return outcome::failure("a dashboard layout belongs to a user: call with a user's token",
                                protocol::errc::bad_request);
      }
      auto rp = self->make_response_promise<outcome>();
      features::transaction(
        self, in,
        [user](storage::pg_transaction& tx) -> caf::expected<json> {
          auto rows = tx.execute(load_sql, {user});
          if (!rows) {
            return std::move(rows.error());
          }
          if (rows->size() == 0) {
            return json(nullptr);
          }
          return json{{"user_id", user},
                      {"layout", json::parse(rows->get(0, 0))},
                      {"version", std::stoi(std::string{rows->get(0, 1)})},
                      {"updated_at", rows->get(0, 2)}};
        },
        [rp](caf::expected<json> found) mutable {
          if (found && found->is_null()) {
            rp.deliver(outcome::failure("you have not saved a layout", protocol::errc::not_found));
          } else {
            rp.deliver(found ? outcome::success(std::move(*found))
                             : outcome::failure("the layout could not be read"));
          }
        });
      return rp;
    },
  };
}

} // namespace

void add_dashboard(features::catalog& catalog) {
  catalog.add({"dashboard.save_layout", features::kind::function, "records:write", layout_schema(),
               "Stores the caller's dashboard layout", save_layout});
  catalog.add({"dashboard.get_layout", features::kind::function, "records:read",
               json{{"type", "object"}, {"additionalProperties", false}},
               "Reads back the caller's dashboard layout", get_layout});
}

} // namespace troupe::actors

#include "storage/webhooks.hpp"

#include "protocol/crypto.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"
#include "protocol/webhooks.hpp"
#include "storage/arrays.hpp"
#include "storage/rows.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace troupe::storage {

namespace {

using json = nlohmann::json;

#define TROUPE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

// -- event types
// -----------------------------------------------------------------------------------

constexpr pg_statement event_types_sql{
  "wh_event_types",
  "SELECT name, description, " TROUPE_TS(
    "created_at") " FROM event_types WHERE name > $1 ORDER BY name LIMIT $2::int"};
constexpr pg_statement insert_event_type_sql{
  "wh_event_type_insert",
  "INSERT INTO event_types (tenant_id, name, description) VALUES (troupe_current_tenant(), $1, "
  "$2) RETURNING name, description, " TROUPE_TS("created_at")};

// -- endpoints
// -------------------------------------------------------------------------------------

#define TROUPE_ENDPOINT_COLUMNS                                                                    \
  "id::text, url, description, array_to_json(events)::text, rate_limit_per_s, ordered, "           \
  "disabled, disabled_reason, " TROUPE_TS("created_at") ", " TROUPE_TS(                            \
    "updated_at") ", encode(secret, 'hex'), CASE WHEN previous_until > now() THEN "                \
                  "encode(previous_secret, "                                                       \
                  "'hex') END, consecutive_failures"

constexpr pg_statement endpoints_sql{"wh_endpoints",
                                     "SELECT " TROUPE_ENDPOINT_COLUMNS " FROM webhook_endpoints "
                                     "WHERE id > $1::uuid ORDER BY id LIMIT $2::int"};
constexpr pg_statement endpoint_sql{"wh_endpoint", "SELECT " TROUPE_ENDPOINT_COLUMNS
                                                   " FROM webhook_endpoints WHERE id = $1::uuid"};
constexpr pg_statement endpoint_lock_sql{"wh_endpoint_lock",
                                         "SELECT " TROUPE_ENDPOINT_COLUMNS
                                         " FROM webhook_endpoints WHERE id = $1::uuid FOR UPDATE"};
constexpr pg_statement insert_endpoint_sql{
  "wh_endpoint_insert",
  "INSERT INTO webhook_endpoints (tenant_id, id, url, description, events, rate_limit_per_s, "
  "ordered, disabled, disabled_reason, secret) VALUES (troupe_current_tenant(), $1::uuid, $2, $3, "
  "$4::text[], $5::int, $6::boolean, $7::boolean, $8, decode($9, 'hex')) "
  "RETURNING " TROUPE_ENDPOINT_COLUMNS};
constexpr pg_statement update_endpoint_sql{
  "wh_endpoint_update",
  "UPDATE webhook_endpoints SET url = $2, description = $3, events = $4::text[], "
  "rate_limit_per_s = $5::int, ordered = $6::boolean, "
  "consecutive_failures = CASE WHEN disabled AND NOT $7::boolean THEN 0 "
  "ELSE consecutive_failures END, disabled = $7::boolean, disabled_reason = $8, "
  "updated_at = now() WHERE id = $1::uuid RETURNING " TROUPE_ENDPOINT_COLUMNS};
constexpr pg_statement delete_endpoint_sql{
  "wh_endpoint_delete", "DELETE FROM webhook_endpoints WHERE id = $1::uuid RETURNING id"};
constexpr pg_statement rotate_sql{
  "wh_endpoint_rotate",
  "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = now() + "
  "make_interval(secs => $3::bigint), secret = decode($2, 'hex'), updated_at = now() "
  "WHERE id = $1::uuid RETURNING " TROUPE_ENDPOINT_COLUMNS};
constexpr pg_statement disable_sql{
  "wh_endpoint_disable",
  "UPDATE webhook_endpoints SET disabled = true, disabled_reason = $2, updated_at = now() "
  "WHERE id = $1::uuid AND NOT disabled RETURNING id"};

// -- events and the queue
// ----------------------------------------------------------------------------

constexpr pg_statement subscribers_sql{
  "wh_subscribers",
  "SELECT id::text, array_to_json(events)::text FROM webhook_endpoints WHERE NOT disabled"};
constexpr pg_statement insert_event_sql{
  "wh_event_insert", "INSERT INTO events (tenant_id, id, type, payload, traceparent) VALUES "
                     "(troupe_current_tenant(), $1::uuid, $2, $3::jsonb, nullif($4, '')) "
                     "RETURNING " TROUPE_TS("created_at")};
constexpr pg_statement insert_deliveries_sql{
  "wh_deliveries_insert",
  "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type, "
  "next_attempt_at) SELECT troupe_current_tenant(), d.id, d.endpoint_id, $1::uuid, $2, now() "
  "FROM unnest($3::uuid[], $4::uuid[]) AS d(id, endpoint_id)"};
constexpr pg_statement due_now_sql{
  "wh_queue_now", "INSERT INTO webhook_queue (tenant_id, due_at) VALUES (troupe_current_tenant(), "
                  "now()) ON CONFLICT (tenant_id) DO UPDATE SET due_at = LEAST("
                  "webhook_queue.due_at, EXCLUDED.due_at)"};
constexpr pg_statement due_at_sql{
  "wh_queue_at", "INSERT INTO webhook_queue (tenant_id, due_at) VALUES (troupe_current_tenant(), "
                 "to_timestamp($1::bigint / 1000.0)) ON CONFLICT (tenant_id) DO UPDATE SET "
                 "due_at = LEAST(webhook_queue.due_at, EXCLUDED.due_at)"};
constexpr pg_statement due_tenants_sql{
  "wh_due_tenants",
  "SELECT tenant_id::text FROM webhook_queue WHERE due_at <= now() OR $2::boolean "
  "ORDER BY due_at LIMIT $1::int"};
constexpr pg_statement lock_queue_sql{
  "wh_queue_lock",
  "SELECT 1 FROM webhook_queue WHERE tenant_id = troupe_current_tenant() FOR UPDATE"};

// A pending delivery is claimable when it is due, its endpoint is enabled, nobody live holds
// its lease, and (ordered endpoints) no older pending delivery of its endpoint exists.
#define TROUPE_HEAD_OF_LINE                                                                        \
  "(NOT ep.ordered OR NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.tenant_id = "         \
  "d.tenant_id AND o.endpoint_id = d.endpoint_id AND o.status = 'pending' AND (o.created_at, "     \
  "o.id) < (d.created_at, d.id)))"

// A claim moves next_attempt_at to the lease's end: a delivery in flight is due again only if
// its result never comes, and the index on next_attempt_at skips it meanwhile.
constexpr pg_statement claim_sql{
  "wh_claim",
  "WITH due AS (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.tenant_id "
  "= d.tenant_id AND ep.id = d.endpoint_id WHERE d.status = 'pending' AND NOT ep.disabled AND "
  "d.next_attempt_at <= now() AND " TROUPE_HEAD_OF_LINE " ORDER BY d.next_attempt_at "
  "LIMIT $1::int FOR UPDATE OF d SKIP LOCKED), claimed AS (UPDATE webhook_deliveries d SET "
  "lease_until = now() + make_interval(secs => $2::bigint), next_attempt_at = now() + "
  "make_interval(secs => $2::bigint), leased_by = $3 FROM due, events e, webhook_endpoints ep "
  "WHERE d.id = due.id AND e.tenant_id = d.tenant_id AND e.id = d.event_id AND ep.tenant_id = "
  "d.tenant_id AND ep.id = d.endpoint_id RETURNING d.id::text AS id, d.endpoint_id::text AS "
  "endpoint_id, d.event_id::text AS event_id, d.event_type, d.attempt_count, json_build_object("
  "'id', e.id, 'type', e.type, 'created_at', " TROUPE_TS(
    "e.created_at") ", 'tenant_id', e.tenant_id, 'payload', e.payload)::text AS body, ep.url, "
                    "encode(ep.secret, "
                    "'hex') AS secret, CASE WHEN ep.previous_until > now() THEN "
                    "encode(ep.previous_secret, 'hex') "
                    "END AS previous, ep.rate_limit_per_s, ep.ordered, coalesce(e.traceparent, "
                    "'') AS traceparent, d.created_at AS c_at, d.id AS c_id) SELECT id, "
                    "endpoint_id, event_id, event_type, attempt_count, body, url, secret, "
                    "previous, rate_limit_per_s, ordered, traceparent FROM claimed ORDER BY "
                    "c_at, c_id"};
// What a dispatcher that stopped refreshing its row (for `$2` seconds) holds is due at once:
// its process is gone, so none of it is in flight.
constexpr pg_statement recover_sql{
  "wh_recover",
  "UPDATE webhook_deliveries d SET next_attempt_at = now(), lease_until = NULL, leased_by = NULL "
  "WHERE d.status = 'pending' AND d.leased_by IS NOT NULL AND d.leased_by <> $1 AND NOT EXISTS "
  "(SELECT 1 FROM webhook_dispatchers w WHERE w.instance = d.leased_by AND w.seen_at > now() - "
  "make_interval(secs => $2::int))"};
constexpr pg_statement heartbeat_sql{
  "wh_heartbeat", "INSERT INTO webhook_dispatchers (instance, seen_at) VALUES ($1, now()) "
                  "ON CONFLICT (instance) DO UPDATE SET seen_at = now()"};
constexpr pg_statement forget_dispatchers_sql{
  "wh_forget_dispatchers",
  "DELETE FROM webhook_dispatchers WHERE seen_at < now() - interval '1 day'"};
constexpr pg_statement next_due_sql{
  "wh_next_due",
  "SELECT (extract(epoch FROM min(d.next_attempt_at)) * 1000)::bigint FROM webhook_deliveries d "
  "JOIN webhook_endpoints ep ON ep.tenant_id = d.tenant_id AND ep.id = d.endpoint_id WHERE "
  "d.status = 'pending' AND NOT ep.disabled AND " TROUPE_HEAD_OF_LINE};
constexpr pg_statement set_due_sql{
  "wh_queue_set", "UPDATE webhook_queue SET due_at = to_timestamp($1::bigint / 1000.0) "
                  "WHERE tenant_id = troupe_current_tenant()"};
constexpr pg_statement unqueue_sql{
  "wh_queue_delete", "DELETE FROM webhook_queue WHERE tenant_id = troupe_current_tenant()"};

constexpr pg_statement scrub_user_sql{
  "wh_scrub_user",
  "UPDATE events SET payload = jsonb_set(jsonb_set(payload, '{user,email}', 'null'), "
  "'{user,display_name}', 'null') WHERE type LIKE 'user.%' AND payload->'user'->>'id' = $1"};

// -- deliveries
// ------------------------------------------------------------------------------------

#define TROUPE_DELIVERY_COLUMNS                                                                    \
  "id::text, endpoint_id::text, event_id::text, event_type, status, attempt_count, CASE WHEN "     \
  "status = 'pending' THEN " TROUPE_TS("next_attempt_at") " END, last_status_code, " TROUPE_TS(    \
    "created_at") ", " TROUPE_TS("updated_at")

constexpr pg_statement deliveries_sql{
  "wh_deliveries",
  "SELECT " TROUPE_DELIVERY_COLUMNS " FROM webhook_deliveries WHERE endpoint_id = $1::uuid AND "
  "($2 = '' OR status = $2) AND id < coalesce(nullif($3, '')::uuid, "
  "'ffffffff-ffff-ffff-ffff-ffffffffffff') ORDER BY id DESC LIMIT $4::int"};
constexpr pg_statement delivery_sql{"wh_delivery", "SELECT " TROUPE_DELIVERY_COLUMNS
                                                   " FROM webhook_deliveries WHERE id = $1::uuid"};
constexpr pg_statement attempts_sql{
  "wh_attempts",
  "SELECT n, " TROUPE_TS("at") ", status_code, duration_ms, response_body, error "
                               "FROM webhook_attempts WHERE delivery_id = $1::uuid ORDER BY n"};
// A delivery in flight is only marked: its attempt's result makes it due again.
constexpr pg_statement retry_sql{
  "wh_retry",
  "UPDATE webhook_deliveries SET status = 'pending', retry_requested = coalesce(lease_until > "
  "now(), false), next_attempt_at = CASE WHEN lease_until > now() THEN next_attempt_at ELSE "
  "now() END, updated_at = now() WHERE id = $1::uuid RETURNING " TROUPE_DELIVERY_COLUMNS};

constexpr pg_statement record_sql{
  "wh_record",
  "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(delivery_id uuid, n int, at_ms "
  "bigint, status_code int, duration_ms int, response_body text, error text, status text, "
  "next_ms bigint)), upd AS (UPDATE webhook_deliveries d SET status = CASE WHEN "
  "d.retry_requested THEN 'pending' ELSE r.status END, attempt_count = r.n, last_status_code = "
  "r.status_code, next_attempt_at = CASE WHEN d.retry_requested THEN now() WHEN r.status = "
  "'pending' THEN to_timestamp(r.next_ms / 1000.0) END, retry_requested = false, lease_until = "
  "NULL, leased_by = NULL, updated_at = now() FROM r WHERE d.tenant_id = troupe_current_tenant() "
  "AND d.id = ANY($3::uuid[]) AND d.id = r.delivery_id AND d.leased_by = $2 RETURNING d.id) "
  "INSERT INTO webhook_attempts (tenant_id, delivery_id, n, at, status_code, duration_ms, "
  "response_body, error) SELECT troupe_current_tenant(), r.delivery_id, r.n, "
  "to_timestamp(r.at_ms / 1000.0), r.status_code, r.duration_ms, r.response_body, r.error FROM r "
  "JOIN upd ON upd.id = r.delivery_id ON CONFLICT DO NOTHING RETURNING delivery_id::text"};
constexpr pg_statement failures_sql{
  "wh_failures",
  "UPDATE webhook_endpoints ep SET consecutive_failures = CASE WHEN c.reset THEN c.add ELSE "
  "ep.consecutive_failures + c.add END FROM jsonb_to_recordset($1::jsonb) AS c(endpoint_id uuid, "
  "reset boolean, add int) WHERE ep.id = c.endpoint_id AND NOT ep.disabled AND (c.add > 0 OR "
  "ep.consecutive_failures <> 0) "
  "RETURNING ep.id::text, ep.consecutive_failures"};

// -- inbound
// ---------------------------------------------------------------------------------------

#define TROUPE_SOURCE_COLUMNS                                                                      \
  "name, scheme, encode(secret, 'hex'), tolerance_s, " TROUPE_TS("created_at") ", " TROUPE_TS(     \
    "updated_at")

constexpr pg_statement source_sql{"wh_source", "SELECT " TROUPE_SOURCE_COLUMNS
                                               " FROM inbound_sources WHERE name = $1"};
constexpr pg_statement source_lock_sql{"wh_source_lock",
                                       "SELECT " TROUPE_SOURCE_COLUMNS
                                       " FROM inbound_sources WHERE name = $1 FOR UPDATE"};
constexpr pg_statement put_source_sql{
  "wh_source_put",
  "INSERT INTO inbound_sources (tenant_id, name, scheme, secret, tolerance_s) VALUES "
  "(troupe_current_tenant(), $1, $2, decode($3, 'hex'), $4::int) ON CONFLICT (tenant_id, name) "
  "DO UPDATE SET scheme = EXCLUDED.scheme, secret = EXCLUDED.secret, tolerance_s = "
  "EXCLUDED.tolerance_s, updated_at = now() RETURNING " TROUPE_SOURCE_COLUMNS};

#define TROUPE_INBOUND_COLUMNS                                                                     \
  "id::text, source, provider_event_id, event_id::text, " TROUPE_TS("received_at") ", body::text"

constexpr pg_statement insert_inbound_sql{
  "wh_inbound_insert",
  "INSERT INTO inbound_events (tenant_id, id, source, provider_event_id, event_id, body) VALUES "
  "(troupe_current_tenant(), $1::uuid, $2, $3, $4::uuid, $5::jsonb) ON CONFLICT (tenant_id, "
  "source, provider_event_id) DO NOTHING RETURNING " TROUPE_INBOUND_COLUMNS};
constexpr pg_statement find_inbound_sql{
  "wh_inbound_find", "SELECT " TROUPE_INBOUND_COLUMNS " FROM inbound_events WHERE source = $1 AND "
                     "provider_event_id = $2"};
constexpr pg_statement inbound_events_sql{
  "wh_inbound_events",
  "SELECT " TROUPE_INBOUND_COLUMNS " FROM inbound_events WHERE ($1 = '' OR source = $1) AND "
  "id < coalesce(nullif($2, '')::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff') "
  "ORDER BY id DESC LIMIT $3::int"};

#undef TROUPE_ENDPOINT_COLUMNS
#undef TROUPE_DELIVERY_COLUMNS
#undef TROUPE_SOURCE_COLUMNS
#undef TROUPE_INBOUND_COLUMNS
#undef TROUPE_HEAD_OF_LINE
#undef TROUPE_TS

std::optional<std::string> opt_param(const std::optional<std::string>& v) {
  return v;
}

std::optional<std::string> opt_param(const std::optional<std::uint32_t>& v) {
  return v ? std::optional<std::string>{std::to_string(*v)} : std::nullopt;
}

std::optional<std::int32_t> opt_int(const pg_rows& rows, int r, int c) {
  if (rows.is_null(r, c)) {
    return std::nullopt;
  }
  return std::stoi(std::string{rows.get(r, c)});
}

std::string unhex_cell(const pg_rows& rows, int r, int c) {
  return protocol::crypto::unhex(rows.get(r, c)).value_or("");
}

endpoint_row to_endpoint(const pg_rows& rows, int r) {
  endpoint_row e;
  e.id = rows.get(r, 0);
  e.url = rows.get(r, 1);
  e.description = rows.optional(r, 2);
  if (!rows.is_null(r, 3)) {
    e.events = text_array(rows.get(r, 3));
  }
  if (auto limit = opt_int(rows, r, 4)) {
    e.rate_limit_per_s = static_cast<std::uint32_t>(*limit);
  }
  e.ordered = rows.get(r, 5) == "t";
  e.disabled = rows.get(r, 6) == "t";
  e.disabled_reason = rows.optional(r, 7);
  e.created_at = rows.get(r, 8);
  e.updated_at = rows.get(r, 9);
  e.secret = unhex_cell(rows, r, 10);
  if (!rows.is_null(r, 11)) {
    e.previous_secret = unhex_cell(rows, r, 11);
  }
  e.consecutive_failures = opt_int(rows, r, 12).value_or(0);
  return e;
}

delivery_row to_delivery(const pg_rows& rows, int r) {
  return {std::string{rows.get(r, 0)}, std::string{rows.get(r, 1)}, std::string{rows.get(r, 2)},
          std::string{rows.get(r, 3)}, std::string{rows.get(r, 4)}, opt_int(rows, r, 5).value_or(0),
          rows.optional(r, 6),         opt_int(rows, r, 7),         std::string{rows.get(r, 8)},
          std::string{rows.get(r, 9)}};
}

inbound_source_row to_source(const pg_rows& rows, int r) {
  return {std::string{rows.get(r, 0)}, std::string{rows.get(r, 1)},
          unhex_cell(rows, r, 2),      opt_int(rows, r, 3).value_or(300),
          std::string{rows.get(r, 4)}, std::string{rows.get(r, 5)}};
}

inbound_event_row to_inbound(const pg_rows& rows, int r) {
  return {std::string{rows.get(r, 0)}, std::string{rows.get(r, 1)}, std::string{rows.get(r, 2)},
          std::string{rows.get(r, 3)}, std::string{rows.get(r, 4)}, std::string{rows.get(r, 5)}};
}

pg_params endpoint_params(const std::string& id, const endpoint_fields& f) {
  return {id,
          f.url,
          opt_param(f.description),
          f.events ? std::optional<std::string>{array_literal(*f.events)} : std::nullopt,
          opt_param(f.rate_limit_per_s),
          std::string{f.ordered ? "true" : "false"},
          std::string{f.disabled ? "true" : "false"},
          opt_param(f.disabled_reason)};
}

std::string uuid_array(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += ids[i];
  }
  return out + "}";
}

} // namespace

std::string to_hex_bytea(const std::string& bytes) {
  return protocol::crypto::hex(bytes);
}

caf::expected<std::vector<event_type_row>> webhook_repository::event_types(const std::string& after,
                                                                           std::uint32_t limit) {
  return all_rows<event_type_row>(
    tx_.execute(event_types_sql, {after, std::to_string(limit)}), [](const pg_rows& rows, int r) {
      return event_type_row{std::string{rows.get(r, 0)}, rows.optional(r, 1),
                            std::string{rows.get(r, 2)}};
    });
}

caf::expected<event_type_row>
webhook_repository::insert_event_type(const std::string& name,
                                      const std::optional<std::string>& description) {
  auto rows = tx_.execute(insert_event_type_sql, {name, description});
  if (!rows) {
    return std::move(rows.error());
  }
  return event_type_row{std::string{rows->get(0, 0)}, rows->optional(0, 1),
                        std::string{rows->get(0, 2)}};
}

caf::expected<std::vector<endpoint_row>> webhook_repository::endpoints(const std::string& after,
                                                                       std::uint32_t limit) {
  return all_rows<endpoint_row>(
    tx_.execute(endpoints_sql,
                {after.empty() ? std::string{"00000000-0000-0000-0000-000000000000"} : after,
                 std::to_string(limit)}),
    to_endpoint);
}

caf::expected<std::optional<endpoint_row>> webhook_repository::endpoint(const std::string& id,
                                                                        bool for_update) {
  return first_row<endpoint_row>(tx_.execute(for_update ? endpoint_lock_sql : endpoint_sql, {id}),
                                 to_endpoint);
}

caf::expected<endpoint_row> webhook_repository::insert_endpoint(const std::string& id,
                                                                const endpoint_fields& f,
                                                                const std::string& sealed_secret) {
  auto params = endpoint_params(id, f);
  params.emplace_back(to_hex_bytea(sealed_secret));
  auto rows = tx_.execute(insert_endpoint_sql, params);
  if (!rows) {
    return std::move(rows.error());
  }
  return to_endpoint(*rows, 0);
}

caf::expected<std::optional<endpoint_row>>
webhook_repository::update_endpoint(const std::string& id, const endpoint_fields& f) {
  auto row = first_row<endpoint_row>(tx_.execute(update_endpoint_sql, endpoint_params(id, f)),
                                     to_endpoint);
  if (row && *row && !(*row)->disabled) {
    // Deliveries parked while it was disabled (or held back by its old settings) are due.
    if (auto queued = tx_.execute(due_now_sql); !queued) {
      return std::move(queued.error());
    }
  }
  return row;
}

caf::expected<bool> webhook_repository::delete_endpoint(const std::string& id) {
  auto rows = tx_.execute(delete_endpoint_sql, {id});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->size() == 1;
}

caf::expected<std::optional<endpoint_row>>
webhook_repository::rotate_secret(const std::string& id, const std::string& sealed_secret,
                                  std::int64_t overlap_s) {
  return first_row<endpoint_row>(
    tx_.execute(rotate_sql, {id, to_hex_bytea(sealed_secret), std::to_string(overlap_s)}),
    to_endpoint);
}

caf::expected<bool> webhook_repository::disable_endpoint(const std::string& id,
                                                         const std::string& reason) {
  auto rows = tx_.execute(disable_sql, {id, reason});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->size() == 1;
}

caf::expected<event_row> webhook_repository::publish(const std::string& type,
                                                     const std::string& payload_json,
                                                     const std::string& id,
                                                     const std::string& traceparent) {
  auto subscribers = tx_.execute(subscribers_sql);
  if (!subscribers) {
    return std::move(subscribers.error());
  }
  event_row out;
  out.id = id.empty() ? protocol::new_uuid_v7() : id;
  out.type = type;
  auto inserted = tx_.execute(insert_event_sql, {out.id, type, payload_json, traceparent});
  if (!inserted) {
    return std::move(inserted.error());
  }
  out.created_at = inserted->get(0, 0);
  std::vector<std::string> ids;
  std::vector<std::string> endpoints;
  for (int r = 0; r < subscribers->size(); ++r) {
    std::vector<std::string> patterns;
    if (!subscribers->is_null(r, 1)) {
      patterns = text_array(subscribers->get(r, 1));
    }
    if (protocol::webhooks::subscribed(patterns, type)) {
      ids.push_back(protocol::new_uuid_v7());
      endpoints.emplace_back(subscribers->get(r, 0));
    }
  }
  out.deliveries = ids.size();
  if (ids.empty()) {
    return out;
  }
  auto deliveries
    = tx_.execute(insert_deliveries_sql, {out.id, type, uuid_array(ids), uuid_array(endpoints)});
  if (!deliveries) {
    return std::move(deliveries.error());
  }
  if (auto queued = tx_.execute(due_now_sql); !queued) {
    return std::move(queued.error());
  }
  return out;
}

caf::expected<std::size_t> webhook_repository::scrub_user(const std::string& user_id) {
  auto rows = tx_.execute(scrub_user_sql, {user_id});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->affected();
}

caf::expected<std::vector<delivery_row>>
webhook_repository::deliveries(const std::string& endpoint_id, const std::string& status,
                               const std::string& before, std::uint32_t limit) {
  return all_rows<delivery_row>(
    tx_.execute(deliveries_sql, {endpoint_id, status, before, std::to_string(limit)}), to_delivery);
}

caf::expected<std::optional<delivery_row>> webhook_repository::delivery(const std::string& id) {
  return first_row<delivery_row>(tx_.execute(delivery_sql, {id}), to_delivery);
}

caf::expected<std::vector<attempt_row>>
webhook_repository::attempts(const std::string& delivery_id) {
  return all_rows<attempt_row>(
    tx_.execute(attempts_sql, {delivery_id}), [](const pg_rows& rows, int r) {
      return attempt_row{
        opt_int(rows, r, 0).value_or(0), std::string{rows.get(r, 1)}, opt_int(rows, r, 2),
        opt_int(rows, r, 3).value_or(0), rows.optional(r, 4),         rows.optional(r, 5)};
    });
}

caf::expected<std::optional<delivery_row>> webhook_repository::retry(const std::string& id) {
  auto row = first_row<delivery_row>(tx_.execute(retry_sql, {id}), to_delivery);
  if (row && *row) {
    if (auto queued = tx_.execute(due_now_sql); !queued) {
      return std::move(queued.error());
    }
  }
  return row;
}

caf::expected<std::vector<claimed_delivery>> webhook_repository::claim(std::uint32_t limit,
                                                                       std::int64_t lease_s,
                                                                       const std::string& instance,
                                                                       bool recover) {
  if (auto locked = tx_.execute(lock_queue_sql); !locked) {
    return std::move(locked.error());
  }
  if (recover) {
    if (auto released = tx_.execute(recover_sql, {instance, std::to_string(dispatcher_liveness_s)});
        !released) {
      return std::move(released.error());
    }
  }
  auto rows = tx_.execute(claim_sql, {std::to_string(limit), std::to_string(lease_s), instance});
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<claimed_delivery> out;
  out.reserve(static_cast<std::size_t>(rows->size()));
  for (int r = 0; r < rows->size(); ++r) {
    claimed_delivery c;
    c.tenant_id = tx_.tenant().value_or("");
    c.id = rows->get(r, 0);
    c.endpoint_id = rows->get(r, 1);
    c.event_id = rows->get(r, 2);
    c.event_type = rows->get(r, 3);
    c.attempt_count = opt_int(*rows, r, 4).value_or(0);
    c.body = rows->get(r, 5);
    c.url = rows->get(r, 6);
    c.secret = unhex_cell(*rows, r, 7);
    if (!rows->is_null(r, 8)) {
      c.previous_secret = unhex_cell(*rows, r, 8);
    }
    if (auto limit_per_s = opt_int(*rows, r, 9)) {
      c.rate_limit_per_s = static_cast<std::uint32_t>(*limit_per_s);
    }
    c.ordered = rows->get(r, 10) == "t";
    c.traceparent = rows->get(r, 11);
    out.push_back(std::move(c));
  }
  if (out.size() < limit) {
    auto next = tx_.execute(next_due_sql);
    if (!next) {
      return std::move(next.error());
    }
    auto queued = next->is_null(0, 0) ? tx_.execute(unqueue_sql)
                                      : tx_.execute(set_due_sql, {std::string{next->get(0, 0)}});
    if (!queued) {
      return std::move(queued.error());
    }
  }
  return out;
}

caf::expected<std::vector<endpoint_to_disable>>
webhook_repository::record(const std::vector<attempt_result>& results, const std::string& instance,
                           std::uint32_t disable_after) {
  json batch = json::array();
  std::int64_t earliest_retry = 0;
  // Per endpoint, in the order attempts ended: a success resets the count of consecutive
  // failed deliveries, a failed delivery adds one.
  struct tally {
    bool reset = false;
    int add = 0;
  };
  std::map<std::string, tally> tallies;
  std::vector<endpoint_to_disable> out;
  for (const auto& r : results) {
    batch.push_back({{"delivery_id", r.delivery_id},
                     {"n", r.n},
                     {"at_ms", r.at_ms},
                     {"status_code", r.status_code ? json(*r.status_code) : json(nullptr)},
                     {"duration_ms", r.duration_ms},
                     {"response_body", r.response_body ? json(*r.response_body) : json(nullptr)},
                     {"error", r.error ? json(*r.error) : json(nullptr)},
                     {"status", r.status},
                     {"next_ms", r.next_attempt_ms}});
    if (r.status == "pending" && (earliest_retry == 0 || r.next_attempt_ms < earliest_retry)) {
      earliest_retry = r.next_attempt_ms;
    }
    auto& t = tallies[r.endpoint_id];
    if (r.status == "succeeded") {
      t = {true, 0};
    } else if (r.status == "failed") {
      ++t.add;
    }
    if (r.gone) {
      out.push_back({r.endpoint_id, "gone"});
    }
  }
  // The ids again as an array: the planner then probes the primary key for each instead of
  // scanning the tenant's deliveries (docs/performance.md "Webhooks").
  std::vector<std::string> ids;
  ids.reserve(results.size());
  for (const auto& r : results) {
    ids.push_back(r.delivery_id);
  }
  auto recorded
    = tx_.execute(record_sql, {batch.dump(-1, ' ', false, json::error_handler_t::replace), instance,
                               uuid_array(ids)});
  if (!recorded) {
    return std::move(recorded.error());
  }
  json counts = json::array();
  for (const auto& [endpoint, t] : tallies) {
    if (t.reset || t.add > 0) {
      counts.push_back({{"endpoint_id", endpoint}, {"reset", t.reset}, {"add", t.add}});
    }
  }
  if (!counts.empty()) {
    auto failures = tx_.execute(failures_sql, {counts.dump()});
    if (!failures) {
      return std::move(failures.error());
    }
    for (int r = 0; r < failures->size(); ++r) {
      if (disable_after > 0
          && opt_int(*failures, r, 1).value_or(0) >= static_cast<std::int32_t>(disable_after)) {
        out.push_back({std::string{failures->get(r, 0)}, "failures"});
      }
    }
  }
  // A delivery of an ordered endpoint that ended unblocks its next one: look again now.
  if (std::any_of(results.begin(), results.end(),
                  [](const attempt_result& r) { return r.ordered && r.status != "pending"; })) {
    earliest_retry = 1;
  }
  if (earliest_retry > 0) {
    if (auto queued = tx_.execute(due_at_sql, {std::to_string(earliest_retry)}); !queued) {
      return std::move(queued.error());
    }
  }
  return out;
}

caf::expected<std::optional<inbound_source_row>>
webhook_repository::source(const std::string& name) {
  return first_row<inbound_source_row>(tx_.execute(source_sql, {name}), to_source);
}

caf::expected<std::pair<inbound_source_row, std::optional<inbound_source_row>>>
webhook_repository::put_source(const std::string& name, const std::string& scheme,
                               const std::string& sealed, std::int32_t tolerance_s) {
  auto before = first_row<inbound_source_row>(tx_.execute(source_lock_sql, {name}), to_source);
  if (!before) {
    return std::move(before.error());
  }
  auto rows = tx_.execute(put_source_sql,
                          {name, scheme, to_hex_bytea(sealed), std::to_string(tolerance_s)});
  if (!rows) {
    return std::move(rows.error());
  }
  return std::make_pair(to_source(*rows, 0), std::move(*before));
}

caf::expected<std::pair<inbound_event_row, bool>>
webhook_repository::insert_inbound(const std::string& id, const std::string& source,
                                   const std::string& provider_event_id,
                                   const std::string& event_id, const std::string& body) {
  auto rows = tx_.execute(insert_inbound_sql, {id, source, provider_event_id, event_id, body});
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 1) {
    return std::make_pair(to_inbound(*rows, 0), true);
  }
  auto found = tx_.execute(find_inbound_sql, {source, provider_event_id});
  if (!found) {
    return std::move(found.error());
  }
  if (found->size() == 0) {
    return caf::make_error(protocol::errc::conflict, "inbound event vanished");
  }
  return std::make_pair(to_inbound(*found, 0), false);
}

caf::expected<std::vector<inbound_event_row>>
webhook_repository::inbound_events(const std::string& source, const std::string& before,
                                   std::uint32_t limit) {
  return all_rows<inbound_event_row>(
    tx_.execute(inbound_events_sql, {source, before, std::to_string(limit)}), to_inbound);
}

caf::error dispatcher_alive(pg_transaction& tx, const std::string& instance) {
  auto seen = tx.execute(heartbeat_sql, {instance});
  if (!seen) {
    return std::move(seen.error());
  }
  auto forgotten = tx.execute(forget_dispatchers_sql);
  return forgotten ? caf::error{} : std::move(forgotten.error());
}

caf::expected<std::vector<std::string>> due_tenants(pg_transaction& tx, std::uint32_t limit,
                                                    bool all) {
  return all_rows<std::string>(
    tx.execute(due_tenants_sql, {std::to_string(limit), std::string{all ? "true" : "false"}}),
    [](const pg_rows& rows, int r) { return std::string{rows.get(r, 0)}; });
}

} // namespace troupe::storage

#pragma once

// Events, webhook endpoints, deliveries and attempts, and inbound sources and events
// (storage/migrations/0007_webhooks.sql, docs/webhooks.md). Every method runs inside a
// transaction of one tenant (forced RLS), except `due_tenants`, which reads the queue of
// tenants with due deliveries. Secrets arrive and leave sealed; this layer never sees one.

#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::storage {

struct event_type_row {
  std::string name;
  std::optional<std::string> description;
  std::string created_at;
};

struct endpoint_row {
  std::string id;
  std::string url;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> events; ///< nullopt: every event
  std::optional<std::uint32_t> rate_limit_per_s;
  bool ordered = false;
  bool disabled = false;
  std::optional<std::string> disabled_reason;
  std::string created_at;
  std::string updated_at;
  std::string secret;                         ///< sealed
  std::optional<std::string> previous_secret; ///< sealed, while it still signs
  std::int32_t consecutive_failures = 0;
};

/// The changeable fields of an endpoint, as they are to be stored.
struct endpoint_fields {
  std::string url;
  std::optional<std::string> description;
  std::optional<std::vector<std::string>> events;
  std::optional<std::uint32_t> rate_limit_per_s;
  bool ordered = false;
  bool disabled = false;
  std::optional<std::string> disabled_reason;
};

struct event_row {
  std::string id;
  std::string type;
  std::string created_at;
  std::size_t deliveries = 0; ///< deliveries created for it
};

struct delivery_row {
  std::string id;
  std::string endpoint_id;
  std::string event_id;
  std::string event_type;
  std::string status;
  std::int32_t attempt_count = 0;
  std::optional<std::string> next_attempt_at;
  std::optional<std::int32_t> last_status_code;
  std::string created_at;
  std::string updated_at;
};

struct attempt_row {
  std::int32_t n = 0;
  std::string at;
  std::optional<std::int32_t> status_code;
  std::int32_t duration_ms = 0;
  std::optional<std::string> response_body;
  std::optional<std::string> error;
};

/// A delivery claimed under a lease, with what sending it needs.
struct claimed_delivery {
  std::string tenant_id;
  std::string id;
  std::string endpoint_id;
  std::string event_id;
  std::string event_type;
  std::int32_t attempt_count = 0; ///< attempts before this one
  std::string body;               ///< the JSON the endpoint receives
  std::string traceparent;        ///< of the publishing request, or empty
  std::string url;
  std::string secret;                         ///< sealed
  std::optional<std::string> previous_secret; ///< sealed, while it still signs
  std::optional<std::uint32_t> rate_limit_per_s;
  bool ordered = false;
};

/// How one attempt ended, to be recorded.
struct attempt_result {
  std::string delivery_id;
  std::string endpoint_id;
  std::int32_t n = 0;     ///< the attempt's number (1 = first)
  std::int64_t at_ms = 0; ///< when it started, unix milliseconds
  std::optional<std::int32_t> status_code;
  std::int32_t duration_ms = 0;
  std::optional<std::string> response_body;
  std::optional<std::string> error;
  std::string status;               ///< the delivery's status after it: pending, succeeded, failed
  std::int64_t next_attempt_ms = 0; ///< when pending: unix milliseconds of the next attempt
  bool gone = false;                ///< the endpoint answered 410
  bool ordered = false;             ///< the endpoint delivers in order
};

/// An endpoint to disable after recorded results (410 Gone, or too many failed deliveries).
struct endpoint_to_disable {
  std::string endpoint_id;
  std::string reason; ///< gone or failures
};

struct inbound_source_row {
  std::string name;
  std::string scheme;
  std::string secret; ///< sealed
  std::int32_t tolerance_s = 300;
  std::string created_at;
  std::string updated_at;
};

struct inbound_event_row {
  std::string id;
  std::string source;
  std::string provider_event_id;
  std::string event_id;
  std::string received_at;
  std::string body; ///< JSON
};

/// Hex of bytes and back, for bytea columns.
std::string to_hex_bytea(const std::string& bytes);

class webhook_repository {
public:
  explicit webhook_repository(pg_transaction& tx) : tx_(tx) {}

  // -- event types
  caf::expected<std::vector<event_type_row>> event_types(const std::string& after,
                                                         std::uint32_t limit);
  /// Conflict if the name exists.
  caf::expected<event_type_row> insert_event_type(const std::string& name,
                                                  const std::optional<std::string>& description);

  // -- endpoints
  caf::expected<std::vector<endpoint_row>> endpoints(const std::string& after, std::uint32_t limit);
  caf::expected<std::optional<endpoint_row>> endpoint(const std::string& id, bool for_update);
  caf::expected<endpoint_row> insert_endpoint(const std::string& id, const endpoint_fields& f,
                                              const std::string& sealed_secret);
  /// Stores `f`; a re-enabled endpoint's failure count restarts and its parked deliveries
  /// become due.
  caf::expected<std::optional<endpoint_row>> update_endpoint(const std::string& id,
                                                             const endpoint_fields& f);
  caf::expected<bool> delete_endpoint(const std::string& id);
  /// The new secret signs; the old one too until `overlap_s` from now.
  caf::expected<std::optional<endpoint_row>>
  rotate_secret(const std::string& id, const std::string& sealed_secret, std::int64_t overlap_s);
  /// Disables an enabled endpoint for `reason`; false if it was disabled or is gone.
  caf::expected<bool> disable_endpoint(const std::string& id, const std::string& reason);

  // -- events
  /// Stores the event and one pending delivery per enabled endpoint subscribed to its type
  /// (due now), and marks the tenant due.
  /// `id`: the event's id (empty: a new one); `traceparent`: the publishing request's, sent
  /// with every delivery (empty: none).
  caf::expected<event_row> publish(const std::string& type, const std::string& payload_json,
                                   const std::string& id = {}, const std::string& traceparent = {});

  /// Erasure: removes the user's email and display name from the payloads of stored
  /// `user.*` events about them (deliveries not yet sent carry the scrubbed payload).
  caf::expected<std::size_t> scrub_user(const std::string& user_id);

  // -- deliveries
  caf::expected<std::vector<delivery_row>> deliveries(const std::string& endpoint_id,
                                                      const std::string& status,
                                                      const std::string& before,
                                                      std::uint32_t limit);
  caf::expected<std::optional<delivery_row>> delivery(const std::string& id);
  caf::expected<std::vector<attempt_row>> attempts(const std::string& delivery_id);
  /// Makes the delivery pending and due now (unless it is in flight: then it is due when
  /// that attempt ends); nullopt if there is none.
  caf::expected<std::optional<delivery_row>> retry(const std::string& id);

  /// Claims up to `limit` due deliveries of this tenant for `lease_s` seconds as `instance`
  /// (`<cluster.node-id>/<random>`); with `recover`, first makes due what dispatchers that
  /// stopped refreshing their row (see `dispatcher_alive`) still hold. A claimed delivery is
  /// due again when its lease ends, unless its result is recorded first. Ordered endpoints
  /// give only their oldest pending delivery. Then moves the tenant's place in the queue to
  /// its next due time (or removes it).
  caf::expected<std::vector<claimed_delivery>> claim(std::uint32_t limit, std::int64_t lease_s,
                                                     const std::string& instance, bool recover);

  /// Records attempts and the deliveries' new states (only for deliveries still leased by
  /// `instance`), counts failed deliveries per endpoint and names the endpoints to disable.
  caf::expected<std::vector<endpoint_to_disable>> record(const std::vector<attempt_result>& results,
                                                         const std::string& instance,
                                                         std::uint32_t disable_after);

  // -- inbound
  caf::expected<std::optional<inbound_source_row>> source(const std::string& name);
  /// Creates or replaces a source; the second value is the row before (if any).
  caf::expected<std::pair<inbound_source_row, std::optional<inbound_source_row>>>
  put_source(const std::string& name, const std::string& scheme, const std::string& sealed,
             std::int32_t tolerance_s);
  /// Stores an inbound event unless its provider id was seen: the stored row, and true if
  /// it was new.
  caf::expected<std::pair<inbound_event_row, bool>>
  insert_inbound(const std::string& id, const std::string& source,
                 const std::string& provider_event_id, const std::string& event_id,
                 const std::string& body);
  caf::expected<std::vector<inbound_event_row>>
  inbound_events(const std::string& source, const std::string& before, std::uint32_t limit);

private:
  pg_transaction& tx_;
};

/// A dispatcher that has not refreshed its row for this long is taken for gone.
inline constexpr int dispatcher_liveness_s = 15;

/// Refreshes `instance`'s row in `webhook_dispatchers` (and forgets rows a day old): a
/// dispatcher calls it every few seconds, outside any tenant.
caf::error dispatcher_alive(pg_transaction& tx, const std::string& instance);

/// Tenants with deliveries due now (or, with `all`, every tenant in the queue): the one
/// cross-tenant read, run outside any tenant.
caf::expected<std::vector<std::string>> due_tenants(pg_transaction& tx, std::uint32_t limit,
                                                    bool all);

} // namespace troupe::storage

#pragma once

// Feature actors: a developer's own functions (`POST /v1/functions/{name}`) and job handlers
// (`POST /v1/jobs` with `"type": name`), registered with one call at start-up. The tutorial is
// docs/feature-actors.md; the worked example is actors/functions/dashboard.cpp.
//
//   catalog.add({"dashboard.save_layout", features::kind::function, "records:write",
//                schema, "Stores the caller's dashboard layout", save_layout_actor});
//
// A feature actor is spawned for each invocation (function call or job attempt). It receives
// one `invocation` and answers one `outcome`, asynchronously if it likes (a response promise),
// and must never block its scheduler thread: PostgreSQL is reached through `transaction`,
// `audited` and `once` below, which run on the pool's own threads.

#include "protocol/audit.hpp"
#include "protocol/errc.hpp"
#include "protocol/principal.hpp"
#include "storage/db.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/behavior.hpp>
#include <caf/fwd.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace troupe::features {

enum class kind { function, job };

/// What a feature actor is asked to do.
struct invocation {
  std::string name; ///< the function's name or the job's type
  features::kind kind = kind::function;
  std::string tenant_id;
  protocol::principal caller;    ///< functions: who called; jobs: the system
  protocol::audit_origin origin; ///< for audited writes (request id, traceparent, ...)
  nlohmann::json params;         ///< the function's params or the job's payload (validated)
  std::string job_id;            ///< jobs only
  std::int32_t attempt = 0;      ///< jobs: this attempt's number (1 = first)
  std::int32_t max_attempts = 0; ///< jobs
  std::int64_t deadline_ms = 0;  ///< Unix ms when the attempt or call times out
  /// Set when the job is cancelled or its attempt times out: a long handler checks
  /// `stopping()` and ends early (its outcome is then recorded as cancelled or timed out).
  std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);

  bool stopping() const {
    return stop && stop->load(std::memory_order_relaxed);
  }
};

/// What a feature actor answers.
struct outcome {
  bool ok = true;
  nlohmann::json result; ///< on success: the function's `result` or the job's `result`
  std::string error;     ///< on failure: shown to the client (functions) or kept (jobs)
  protocol::errc code = protocol::errc::internal;              ///< functions: the problem's code
  std::vector<std::pair<std::string, std::string>> violations; ///< validation-failed pointers

  static outcome success(nlohmann::json result = nullptr);
  /// A failure. Jobs: retried per the backoff until max_attempts. Functions: `code` (default
  /// internal: a 500 whose detail is only logged; a 4xx code shows `message` to the client).
  static outcome failure(std::string message, protocol::errc code = protocol::errc::internal);
  /// A 400 validation-failed about `pointer` (functions).
  static outcome invalid(std::string pointer, std::string message);
};

using actor_factory = std::function<caf::behavior(caf::event_based_actor*)>;

/// One registration: a function or a job handler.
struct definition {
  std::string name; ///< `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`, at most 100 characters
  features::kind kind = kind::function;
  std::string permission; ///< functions: a catalogue permission the caller also needs ("" none)
  nlohmann::json schema;  ///< JSON Schema (the subset of protocol/json_schema.hpp) of params
  std::string description;
  actor_factory actor;    ///< spawns the feature actor for one invocation
  bool test_only = false; ///< registered only with jobs.test-handlers=true
};

/// The registered features of a node: filled at start-up, then read-only (shared by the
/// services and the job dispatcher without locks).
class catalog {
public:
  catalog();
  ~catalog();
  catalog(const catalog&) = delete;
  catalog& operator=(const catalog&) = delete;

  /// Registers `d`. Throws std::invalid_argument for a bad name, a duplicate, an unknown
  /// permission or a schema outside the supported subset: a broken registration stops the
  /// server at start, never a request later.
  void add(definition d);

  struct entry;
  /// The function or job handler called `name`, or nullptr.
  const entry* find(kind k, const std::string& name) const;
  /// Every entry of kind `k`, ordered by name.
  std::vector<const entry*> list(kind k) const;

  /// The definition of an entry, and its compiled schema's validator: the violations of
  /// `params` (pointer, message), empty if valid.
  static const definition& of(const entry& e);
  static std::vector<std::pair<std::string, std::string>> check(const entry& e,
                                                                const nlohmann::json& params);

private:
  std::map<std::pair<int, std::string>, std::unique_ptr<entry>> entries_;
};

/// Spawns the feature actor of one invocation as a child of `parent` (what the job runner
/// and the functions service do).
caf::actor spawn_feature(caf::local_actor* parent, const actor_factory& factory);

// -- reaching PostgreSQL from a feature actor -------------------------------------------------

template <class T>
using then_fn = std::function<void(caf::expected<T>)>;

using tx_body = std::function<caf::expected<nlohmann::json>(storage::pg_transaction&)>;
using audited_body
  = std::function<caf::expected<nlohmann::json>(storage::pg_transaction&, protocol::audit_change&)>;

/// Runs `body` in a transaction of the invocation's tenant (row-level security applies) on
/// the pool, then calls `then` on `self` (never on the pool's thread).
void transaction(caf::event_based_actor* self, const invocation& in, tx_body body,
                 then_fn<nlohmann::json> then);

/// Runs `body` as audited work of the invocation's tenant: the entry (`action`, the body's
/// resource and before/after) is written in the same transaction, by the tenant actor.
void audited(caf::event_based_actor* self, const invocation& in, std::string action,
             audited_body body, then_fn<nlohmann::json> then);

/// The idempotent helper for job handlers: runs `body` at most once per job and `key`, in one
/// transaction with a record of it (table job_effects). Run again (a retry, or a node that
/// died before the job's outcome was recorded), it skips `body` and hands `then` the result
/// `body` returned the first time. Exactly once for effects inside PostgreSQL.
void once(caf::event_based_actor* self, const invocation& in, const std::string& key, tx_body body,
          then_fn<nlohmann::json> then);

} // namespace troupe::features

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::features::invocation)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::features::outcome)

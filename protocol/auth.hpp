#pragma once

// Authentication (API.md "Auth", docs/auth.md): the messages of the auth service and the key
// manager. Data and interfaces only.

#include "protocol/audit.hpp"
#include "protocol/principal.hpp"
#include "protocol/tenants.hpp"
#include "protocol/type_ids.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/expected.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace troupe::protocol {

/// A request's tenant and principal, once its credential was checked by the tenant actor.
struct authenticated {
  tenant_record tenant;
  principal who;
  rate_info rate; ///< the request's rate-limit state (refused: `rate.allowed` is false)
};

/// One auth operation (docs/auth.md), its input already validated by the HTTP layer.
struct auth_call {
  std::string op;        ///< "signup", "login", "refresh", ... (see actors/auth/auth_service)
  std::string tenant_id; ///< the resolved tenant
  principal who;         ///< the caller (anonymous on public routes)
  audit_origin origin;   ///< for the audit entries (ip, user agent, request id)
  std::string input;     ///< the validated JSON body (or parameters) as text
};

/// What an auth operation answers: a success (`problem == 0`: status, JSON body, Location)
/// or a problem the client may see (`problem` is an `errc`, with a detail and, for 429,
/// `retry_after` seconds, for 403 `required_permission`). Failures the client must not see
/// in detail (database, timeouts) come back as errors instead.
struct auth_reply {
  int status = 200;
  std::string body; ///< JSON text; empty for 204
  std::string location;
  std::uint8_t problem = 0;
  std::string detail;
  std::uint32_t retry_after = 0;
  std::string required_permission;
  /// `validation-failed`: the JSON pointers and their messages (same length).
  std::vector<std::string> error_pointers;
  std::vector<std::string> error_messages;
};

/// One step of an idempotent request (API.md "Idempotency", docs/idempotency.md), asked of the
/// tenant actor, which holds the in-flight claims: `op` "claim" (answers "claimed", "replay"
/// with the kept status and response, "in_flight" or "mismatch"), "complete" (keeps the
/// response) or "release" (a 5xx: the key may be used again); both answer "done".
struct idempotency_call {
  std::string op;
  std::string principal; ///< "user:<id>", "api_key:<id>", "admin"
  std::string key;
  std::string fingerprint; ///< SHA-256 of method, path and the body's SHA-256
  int status = 0;
  std::string response; ///< JSON object text: body, content type, kept headers
};

struct idempotency_answer {
  std::string outcome;
  int status = 0;
  std::string response;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, idempotency_call& x) {
  return f(caf::meta::type_name("idempotency_call"), x.op, x.principal, x.key, x.fingerprint,
           x.status, x.response);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, idempotency_answer& x) {
  return f(caf::meta::type_name("idempotency_answer"), x.outcome, x.status, x.response);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, authenticated& x) {
  return f(caf::meta::type_name("authenticated"), x.tenant, x.who, x.rate);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, auth_call& x) {
  return f(caf::meta::type_name("auth_call"), x.op, x.tenant_id, x.who, x.origin, x.input);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, auth_reply& x) {
  return f(caf::meta::type_name("auth_reply"), x.status, x.body, x.location, x.problem, x.detail,
           x.retry_after, x.required_permission, x.error_pointers, x.error_messages);
}

/// How the hot path answers an authentication without a request/response round trip
/// (docs/performance.md "Authenticated requests"): called exactly once, from whichever thread
/// has the answer. If every copy is destroyed without a call (the message was dropped because
/// an actor died), the last copy calls it with `service_unavailable`, so a request can never
/// be left without an answer.
class auth_callback {
public:
  using function = std::function<void(caf::expected<authenticated>)>;

  auth_callback() = default;
  explicit auth_callback(function f) : state_(std::make_shared<state>(std::move(f))) {}

  void operator()(caf::expected<authenticated> result) const {
    if (state_) {
      state_->call(std::move(result));
    }
  }

private:
  struct state {
    explicit state(function fn) : f(std::move(fn)) {}
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state();
    void call(caf::expected<authenticated> result) {
      if (!called.exchange(true)) {
        f(std::move(result));
      }
    }
    function f;
    std::atomic<bool> called{false};
  };
  std::shared_ptr<state> state_;
};

/// The auth service: runs every auth operation (`auth_atom`), and finds the tenant of an API
/// key or another self-describing credential when the request names none (`resolve_atom`:
/// answers the tenant id, or `unauthenticated`).
using auth_actor = caf::typed_actor<caf::replies_to<auth_atom, auth_call>::with<auth_reply>,
                                    caf::replies_to<resolve_atom, credential>::with<std::string>>;

inline constexpr caf::atom_value auth_key = caf::atom("auth");

/// The users and roles service (docs/rbac.md): the same calls and answers as the auth
/// service, for its own operations.
using users_actor = caf::typed_actor<caf::replies_to<auth_atom, auth_call>::with<auth_reply>>;

inline constexpr caf::atom_value users_key = caf::atom("users");

/// The events and webhooks service (actors/webhooks/webhooks_service): the same interface.
inline constexpr caf::atom_value webhooks_key = caf::atom("hooks");

/// The key manager: `jwks_atom` answers the JWKS document (RFC 7517) as JSON text;
/// `get_atom` answers the kid that signs, as soon as there is one (right after start the
/// keys may still be loading).
using key_manager_actor = caf::typed_actor<caf::replies_to<jwks_atom>::with<std::string>,
                                           caf::replies_to<caf::get_atom>::with<std::string>,
                                           caf::reacts_to<rotate_atom>>;

inline constexpr caf::atom_value key_manager_key = caf::atom("keys");

} // namespace troupe::protocol

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::protocol::auth_callback)

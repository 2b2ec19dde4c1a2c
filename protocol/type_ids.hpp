#pragma once

// The one registry of message types and atoms. Append only: cluster nodes must agree on
// every ID.

#include <caf/type_id.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace troupe::protocol {

/// Answer to `ready_atom`: can this node take traffic, and why not.
struct readiness {
  bool ready = false;
  std::map<std::string, std::string> checks; ///< check name → "ok" or what is wrong
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, readiness& x) {
  return f(caf::meta::type_name("readiness"), x.ready, x.checks);
}

} // namespace troupe::protocol

CAF_BEGIN_TYPE_ID_BLOCK(troupe, caf::first_custom_type_id)
  CAF_ADD_ATOM(troupe, troupe::protocol, ready_atom, "ready")
  CAF_ADD_ATOM(troupe, troupe::protocol, restart_atom, "restart")
  CAF_ADD_ATOM(troupe, troupe::protocol, stable_atom, "stable")
  CAF_ADD_ATOM(troupe, troupe::protocol, render_atom, "render")
  CAF_ADD_ATOM(troupe, troupe::protocol, crash_atom, "crash")
  CAF_ADD_ATOM(troupe, troupe::protocol, run_atom, "run")
  CAF_ADD_ATOM(troupe, troupe::protocol, create_atom, "create")
  CAF_ADD_ATOM(troupe, troupe::protocol, list_atom, "list")
  CAF_ADD_ATOM(troupe, troupe::protocol, update_atom, "update")
  CAF_ADD_ATOM(troupe, troupe::protocol, hash_atom, "hash")
  CAF_ADD_ATOM(troupe, troupe::protocol, verify_atom, "verify")
  CAF_ADD_ATOM(troupe, troupe::protocol, resolve_atom, "resolve")
  CAF_ADD_ATOM(troupe, troupe::protocol, invalidate_atom, "invalidate")
  CAF_ADD_ATOM(troupe, troupe::protocol, sweep_atom, "sweep")
  CAF_ADD_TYPE_ID(troupe, (troupe::protocol::readiness))
  CAF_ADD_ATOM(troupe, troupe::protocol, retire_atom, "retire")
  CAF_ADD_ATOM(troupe, troupe::protocol, prune_atom, "prune")
  CAF_ADD_ATOM(troupe, troupe::protocol, authenticate_atom, "authentic")
  CAF_ADD_ATOM(troupe, troupe::protocol, throttle_atom, "throttle")
  CAF_ADD_ATOM(troupe, troupe::protocol, session_atom, "session")
  CAF_ADD_ATOM(troupe, troupe::protocol, auth_atom, "auth")
  CAF_ADD_ATOM(troupe, troupe::protocol, jwks_atom, "jwks")
  CAF_ADD_ATOM(troupe, troupe::protocol, rotate_atom, "rotate")
  CAF_ADD_ATOM(troupe, troupe::protocol, usage_atom, "usage")
  CAF_ADD_ATOM(troupe, troupe::protocol, idempotency_atom, "idempotent")
  CAF_ADD_ATOM(troupe, troupe::protocol, deliver_atom, "deliver")
  CAF_ADD_ATOM(troupe, troupe::protocol, poke_atom, "poke")
  CAF_ADD_ATOM(troupe, troupe::protocol, tick_atom, "tick")
  CAF_ADD_ATOM(troupe, troupe::protocol, attempted_atom, "attempted")
  CAF_ADD_ATOM(troupe, troupe::protocol, flush_atom, "flush")
CAF_END_TYPE_ID_BLOCK(troupe)

#pragma once

#include "http/handler.hpp"
#include "http/routes.hpp"
#include "protocol/audit.hpp"

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include <string>

namespace troupe::http::routes {

/// Wraps a /v1 handler with its route's requirement (docs/auth.md): "public" runs it as is;
/// otherwise an anonymous or refused principal gets 401 (`unauthenticated`, or why its
/// credential was refused: `token-expired`, `token-revoked`) with `WWW-Authenticate`; "self"
/// needs a user's access token (else 403 `forbidden`); a permission needs a principal that
/// has it (else 403 `forbidden` with `required_permission`, audited as `permission.denied`).
handler_fn guarded(const services& svc, std::string permission, handler_fn inner);

/// Sends `op` with `input` (a JSON object's text) to the service registered as `service`
/// (the auth or the users service) for the request's tenant and principal, and answers with
/// its reply (`paged`: its `next_cursor` is made opaque).
void call_service(caf::actor_system& sys, caf::atom_value service, std::string op,
                  const request& req, const request_context& ctx, const reply_fn& reply,
                  std::string input, bool paged = false);

/// The audit origin of a /v1 request: its principal, peer address, User-Agent, request id.
protocol::audit_origin origin_of(const request& req, const request_context& ctx);

handler_fn signup(const services& svc);
handler_fn login(const services& svc);
handler_fn mfa_verify(const services& svc);
handler_fn refresh(const services& svc);
handler_fn logout(const services& svc);
handler_fn list_sessions(const services& svc);
handler_fn revoke_session(const services& svc);
handler_fn change_password(const services& svc);
handler_fn totp_enroll(const services& svc);
handler_fn totp_activate(const services& svc);
handler_fn totp_disable(const services& svc);
handler_fn create_api_key(const services& svc);
handler_fn list_api_keys(const services& svc);
handler_fn revoke_api_key(const services& svc);
/// GET /v1/users/me: the caller's User and effective permissions, from the tenant actor's
/// cache (no database read).
handler_fn users_me(const services& svc);
/// GET /.well-known/jwks.json
handler_fn jwks(const services& svc);

} // namespace troupe::http::routes

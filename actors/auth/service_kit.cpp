#include "actors/auth/service_kit.hpp"

namespace troupe::actors::kit {

protocol::auth_reply ok(int status, std::string body, std::string location) {
  protocol::auth_reply r;
  r.status = status;
  r.body = std::move(body);
  r.location = std::move(location);
  return r;
}

protocol::auth_reply problem(protocol::errc code, std::string detail) {
  protocol::auth_reply r;
  r.problem = static_cast<std::uint8_t>(code);
  r.detail = std::move(detail);
  return r;
}

caf::error client_error(protocol::errc code, std::string detail) {
  return caf::make_error(code, std::move(detail));
}

caf::error field_error(std::string pointer, std::string message) {
  return caf::make_error(protocol::errc::validation_failed, std::move(pointer), std::move(message));
}

caf::error missing_permission(std::string permission, std::string detail) {
  return caf::make_error(protocol::errc::forbidden, std::move(detail), std::move(permission));
}

void fail(reply_promise& rp, const caf::error& err, const std::string& conflict_detail) {
  const auto code = protocol::to_errc(err);
  if (err.category() != caf::atom("troupe") || code == protocol::errc::internal
      || code == protocol::errc::service_unavailable) {
    rp.deliver(err);
    return;
  }
  std::string detail;
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string, std::string>()) {
    if (code == protocol::errc::validation_failed) {
      auto r = problem(code, {});
      r.error_pointers.push_back(ctx.get_as<std::string>(0));
      r.error_messages.push_back(ctx.get_as<std::string>(1));
      rp.deliver(std::move(r));
      return;
    }
    if (code == protocol::errc::forbidden) {
      auto r = problem(code, ctx.get_as<std::string>(0));
      r.required_permission = ctx.get_as<std::string>(1);
      rp.deliver(std::move(r));
      return;
    }
  }
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    detail = ctx.get_as<std::string>(0);
  } else if (code == protocol::errc::conflict) {
    detail = conflict_detail;
  }
  rp.deliver(problem(code, std::move(detail)));
}

} // namespace troupe::actors::kit

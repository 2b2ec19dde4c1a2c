#include "http/routes/usage.hpp"

#include "http/ask.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"

#include <caf/actor_registry.hpp>

namespace troupe::http::routes {

handler_fn usage(const services& svc) {
  auto* sys = svc.system;
  return [sys](const request& req, const request_context& ctx, const reply_fn& reply) {
    if (!req.query.empty()) {
      reply(problem_response(protocol::errc::bad_request, req, ctx,
                             "GET /v1/usage takes no query parameters"));
      return;
    }
    auto dir = sys->registry().get<protocol::directory_actor>(protocol::directory_key);
    ask<std::string>(
      *sys, dir, ask_timeout,
      [req, ctx, reply](caf::expected<std::string> report) {
        if (!report) {
          const auto code = protocol::to_errc(report.error());
          auto res = problem_response(
            code == protocol::errc::service_unavailable ? code : protocol::errc::internal, req,
            ctx);
          if (code == protocol::errc::service_unavailable) {
            res.headers.emplace_back("Retry-After", "1");
          }
          reply(std::move(res));
          return;
        }
        reply(json_response(200, std::move(*report)));
      },
      protocol::usage_atom_v, ctx.tenant_id);
  };
}

} // namespace troupe::http::routes

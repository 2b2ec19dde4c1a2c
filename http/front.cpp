#include "http/front.hpp"

#include "http/tenancy.hpp"
#include "protocol/logging.hpp"
#include "protocol/type_ids.hpp"

#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/local_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

namespace troupe::http {

namespace {

struct front_state {
  static inline const char* name = "http_front";
  std::unique_ptr<server> srv; // destroying it stops the io threads
};

using front_pointer = caf::stateful_actor<front_state>*;

caf::behavior http_front(front_pointer self, const front_config& config) {
  auto log = config.log;
  self->set_exception_handler([log](std::exception_ptr& eptr) -> caf::error {
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      log->error(protocol::event("http front failed").add("what", e.what()).str());
      return caf::make_error(caf::sec::runtime_error, e.what());
    }
  });
  caf::weak_actor_ptr weak_self = self->ctrl();
  auto on_fatal = [weak_self](std::string what) {
    if (auto strong = weak_self.lock()) {
      caf::anon_send(caf::actor_cast<caf::actor>(strong), protocol::crash_atom_v, std::move(what));
    }
  };
  auto options = config.server;
  options.resolve_tenant
    = directory_resolver(self->system(), config.svc.base_domain, config.svc.admin_token_digest);
  self->state.srv = std::make_unique<server>(std::move(options), make_router(config.svc),
                                             config.metrics, config.log, std::move(on_fatal));
  self->state.srv->start();
  const auto port = self->state.srv->port();
  log->info(
    protocol::event("listening")
      .add("url", config.scheme + "://" + config.display_address + ":" + std::to_string(port))
      .add("threads", static_cast<std::int64_t>(config.server.threads))
      .str());
  log->flush();
  const auto grace = config.shutdown_grace;
  self->set_exit_handler([self, grace, log](caf::exit_msg& msg) {
    log->info(protocol::event("draining connections")
                .add("grace_ms", static_cast<std::int64_t>(grace.count()))
                .str());
    self->state.srv->shutdown(grace); // blocks this detached actor's own thread only
    log->info(protocol::event("http front stopped").str());
    self->quit(msg.reason);
  });
  return {
    [self](protocol::crash_atom, const std::string& what) {
      self->quit(caf::make_error(caf::sec::runtime_error, what));
    },
  };
}

} // namespace

caf::actor spawn_http_front(caf::local_actor* parent, front_config config) {
  return parent->spawn<caf::detached>(http_front, std::move(config));
}

} // namespace troupe::http

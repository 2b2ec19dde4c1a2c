#include "actors/audit/audit_service.hpp"

#include "protocol/actors.hpp"
#include "protocol/error.hpp"
#include "protocol/logging.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <ctime>

namespace troupe::actors {

namespace {

constexpr std::chrono::seconds db_timeout{30};

protocol::audit_reader_actor::behavior_type
audit_reader(protocol::audit_reader_actor::pointer self,
             std::shared_ptr<const storage::audit_secrets> secrets) {
  self->system().registry().put(protocol::audit_reader_key, self);
  return {
    [self, secrets](protocol::list_atom, const std::string& tenant,
                    const protocol::audit_query& q) -> caf::result<protocol::audit_page> {
      auto pool = self->system().registry().get<storage::db_pool_actor>(protocol::db_pool_key);
      if (!pool) {
        return caf::make_error(protocol::errc::service_unavailable, "database pool away");
      }
      auto rp = self->make_response_promise<protocol::audit_page>();
      storage::db_work work{tenant,
                            [q, secrets](storage::pg_transaction& tx) -> caf::expected<std::any> {
                              storage::audit_repository repo{tx, *secrets};
                              auto page = repo.list(q);
                              if (!page) {
                                return std::move(page.error());
                              }
                              return std::any{std::move(*page)};
                            }};
      self->request(pool, db_timeout, protocol::run_atom_v, std::move(work))
        .then(
          [rp](storage::db_reply& reply) mutable {
            rp.deliver(std::any_cast<protocol::audit_page>(std::move(reply.value)));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
  };
}

std::string cutoff_for(std::uint32_t days) {
  const auto cutoff = std::chrono::system_clock::now() - std::chrono::hours{24} * days;
  const std::time_t t = std::chrono::system_clock::to_time_t(cutoff);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct pruner_state {
  static inline const char* name = "audit_pruner";
};

audit_pruner_actor::behavior_type
audit_pruner(audit_pruner_actor::stateful_pointer<pruner_state> self,
             audit_pruner_options options) {
  auto log = protocol::make_logger("audit");
  auto run = [options, log](const std::string& only_tenant = {}) -> caf::expected<std::uint64_t> {
    if (options.retention_days == 0 || !options.secrets) {
      return std::uint64_t{0};
    }
    std::string error;
    auto conn = storage::pg_connection::connect(options.owner_conninfo, error);
    if (!conn) {
      log->warn(protocol::event("audit prune skipped").add("error", error).str());
      return caf::make_error(protocol::errc::service_unavailable, error);
    }
    const auto cutoff = cutoff_for(options.retention_days);
    auto report = storage::prune_audit(*conn, *options.secrets, cutoff, only_tenant);
    if (!report) {
      log->error(protocol::event("audit prune failed")
                   .add("error", protocol::describe(report.error()))
                   .add("cutoff", cutoff)
                   .str());
      return std::move(report.error());
    }
    if (report->failed > 0) {
      log->error(protocol::event("audit chains not pruned")
                   .add("chains", report->failed)
                   .add("first_error", protocol::describe(report->first_error))
                   .str());
    }
    log->info(protocol::event("audit pruned")
                .add("entries", report->removed)
                .add("chains", report->chains)
                .add("cutoff", cutoff)
                .str());
    return report->removed;
  };
  if (options.retention_days > 0) {
    self->delayed_send(self, options.first_run, protocol::sweep_atom_v);
  }
  return {
    [self, run, options](protocol::sweep_atom) {
      (void)run(); // logged inside
      self->delayed_send(self, options.interval, protocol::sweep_atom_v);
    },
    [run](protocol::prune_atom, const std::string& tenant) -> caf::result<std::uint64_t> {
      auto removed = run(tenant);
      if (!removed) {
        return std::move(removed.error());
      }
      return *removed;
    },
    [run](protocol::prune_atom) -> caf::result<std::uint64_t> {
      auto removed = run();
      if (!removed) {
        return std::move(removed.error());
      }
      return *removed;
    },
  };
}

} // namespace

protocol::audit_reader_actor
spawn_audit_reader(caf::local_actor* parent,
                   std::shared_ptr<const storage::audit_secrets> secrets) {
  return parent->spawn(audit_reader, std::move(secrets));
}

audit_pruner_actor spawn_audit_pruner(caf::local_actor* parent, audit_pruner_options options) {
  return parent->spawn<caf::detached>(audit_pruner, std::move(options));
}

} // namespace troupe::actors

#include "actors/auth/key_manager.hpp"

#include "protocol/actors.hpp"
#include "protocol/crypto.hpp"
#include "protocol/error.hpp"
#include "protocol/logging.hpp"
#include "storage/auth.hpp"
#include "storage/db.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <vector>

namespace troupe::actors {

namespace {

std::string aad_of(const std::string& kid) {
  return "troupe signing key " + kid;
}

struct key_manager_state {
  static inline const char* name = "key_manager";
  key_manager_options options;
  std::shared_ptr<spdlog::logger> log = protocol::make_logger("auth");
  bool failing = false;
  caf::timespan backoff{0};
  std::vector<caf::typed_response_promise<std::string>> waiting; // for the first key
};

using key_manager_pointer = protocol::key_manager_actor::stateful_pointer<key_manager_state>;

// The stored keys after making sure one can sign (runs on a database connection).
caf::expected<std::vector<storage::signing_key_row>>
load_or_generate(storage::pg_transaction& tx, const key_manager_options& o) {
  storage::auth_repository repo{tx};
  auto keys = repo.signing_keys();
  if (!keys) {
    return keys;
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (!plan_keys(*keys, now, o.rotation_s, o.access_ttl_s).generate) {
    return keys;
  }
  if (auto err = repo.lock_signing_keys()) {
    return err;
  }
  keys = repo.signing_keys(); // another node may have made one while we waited
  if (!keys || !plan_keys(*keys, now, o.rotation_s, o.access_ttl_s).generate) {
    return keys;
  }
  const auto pair = protocol::jwt::generate_ed25519();
  storage::signing_key_row row;
  row.kid = key_id(pair.public_key);
  row.public_key = pair.public_key;
  row.private_sealed = seal_signing_key(o.seal_key, row.kid, pair.private_seed);
  row.created_at = now;
  if (auto err = repo.insert_signing_key(row)) {
    return err;
  }
  if (auto err = repo.retire_signing_keys_but(row.kid)) {
    return err;
  }
  return repo.signing_keys();
}

caf::expected<std::shared_ptr<const key_snapshot>>
snapshot_of(const std::vector<storage::signing_key_row>& keys, const key_manager_options& o) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const auto plan = plan_keys(keys, now, o.rotation_s, o.access_ttl_s);
  auto snap = std::make_shared<key_snapshot>();
  auto jwks = nlohmann::json::array();
  for (const auto& kid : plan.valid) {
    for (const auto& k : keys) {
      if (k.kid != kid) {
        continue;
      }
      snap->public_keys[kid] = k.public_key;
      jwks.push_back(protocol::jwt::public_jwk(kid, k.public_key));
      if (kid == plan.signer) {
        auto seed = protocol::crypto::open(o.seal_key, k.private_sealed, aad_of(kid));
        auto pair = seed ? protocol::jwt::ed25519_from_seed(*seed) : std::nullopt;
        if (!pair || pair->public_key != k.public_key) {
          return caf::make_error(protocol::errc::internal,
                                 "signing key does not open with auth.key-encryption-key");
        }
        snap->signing_kid = kid;
        snap->signing = std::move(*pair);
      }
    }
  }
  snap->jwks = nlohmann::json{{"keys", std::move(jwks)}}.dump();
  return std::shared_ptr<const key_snapshot>{std::move(snap)};
}

protocol::key_manager_actor::behavior_type key_manager(key_manager_pointer self,
                                                       key_manager_options options) {
  self->state.options = std::move(options);
  self->system().registry().put(protocol::key_manager_key, self);
  self->send(self, protocol::rotate_atom_v);
  return {
    [self](protocol::jwks_atom) { return self->state.options.ring->current()->jwks; },
    [self](caf::get_atom) -> caf::result<std::string> {
      auto kid = self->state.options.ring->current()->signing_kid;
      if (!kid.empty()) {
        return kid;
      }
      auto rp = self->make_response_promise<std::string>();
      self->state.waiting.push_back(rp);
      return rp;
    },
    [self](protocol::rotate_atom) {
      auto& st = self->state;
      auto retry = [self](const std::string& error) {
        auto& s = self->state;
        // Soon at first (the pool may not be up yet), then every 2 s; logged once it persists.
        s.backoff = std::min<caf::timespan>(
          std::max<caf::timespan>(s.backoff * 2, std::chrono::milliseconds{20}),
          std::chrono::seconds{2});
        if (!s.failing && s.backoff >= std::chrono::seconds{1}) {
          s.log->error(protocol::event("signing keys not loaded").add("error", error).str());
          s.failing = true;
        }
        self->delayed_send(self, s.backoff, protocol::rotate_atom_v);
      };
      auto pool = self->system().registry().get<storage::db_pool_actor>(protocol::db_pool_key);
      if (!pool) {
        retry("database pool away");
        return;
      }
      storage::db_work work{
        std::nullopt, [o = st.options](storage::pg_transaction& tx) -> caf::expected<std::any> {
          auto keys = load_or_generate(tx, o);
          if (!keys) {
            return std::move(keys.error());
          }
          return std::any{std::move(*keys)};
        }};
      self->request(pool, std::chrono::seconds{30}, protocol::run_atom_v, std::move(work))
        .then(
          [self, retry](storage::db_reply& reply) {
            auto& s = self->state;
            auto keys
              = std::any_cast<std::vector<storage::signing_key_row>>(std::move(reply.value));
            auto snap = snapshot_of(keys, s.options);
            if (!snap) {
              retry(protocol::describe(snap.error()));
              return;
            }
            const auto before = s.options.ring->current()->signing_kid;
            if ((*snap)->signing_kid != before) {
              s.log->info(
                protocol::event("signing key in use")
                  .add("kid", (*snap)->signing_kid)
                  .add("verifying", static_cast<std::int64_t>((*snap)->public_keys.size()))
                  .str());
            }
            const auto kid = (*snap)->signing_kid;
            s.options.ring->publish(std::move(*snap));
            for (auto& rp : s.waiting) {
              rp.deliver(kid);
            }
            s.waiting.clear();
            s.failing = false;
            s.backoff = caf::timespan{0};
            self->delayed_send(self, s.options.refresh_interval, protocol::rotate_atom_v);
          },
          [retry](caf::error& err) { retry(protocol::describe(err)); });
    },
  };
}

} // namespace

std::string seal_signing_key(const std::string& seal_key, const std::string& kid,
                             const std::string& seed) {
  return protocol::crypto::seal(seal_key, seed, aad_of(kid));
}

protocol::key_manager_actor spawn_key_manager(caf::local_actor* parent,
                                              key_manager_options options) {
  return parent->spawn(key_manager, std::move(options));
}

} // namespace troupe::actors

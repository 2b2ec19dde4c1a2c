#include "actors/features/features.hpp"

#include "actors/auth/service_kit.hpp"
#include "protocol/jobs.hpp"
#include "protocol/json_schema.hpp"
#include "storage/jobs.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/local_actor.hpp>

#include <stdexcept>

namespace troupe::features {

struct catalog::entry {
  definition def;
  protocol::json_schema::validator validator;
};

namespace {} // namespace

outcome outcome::success(nlohmann::json result) {
  outcome o;
  o.result = std::move(result);
  return o;
}

outcome outcome::failure(std::string message, protocol::errc code) {
  outcome o;
  o.ok = false;
  o.error = std::move(message);
  o.code = code;
  return o;
}

outcome outcome::invalid(std::string pointer, std::string message) {
  outcome o = failure(message, protocol::errc::validation_failed);
  o.violations.emplace_back(std::move(pointer), std::move(message));
  return o;
}

catalog::catalog() = default;
catalog::~catalog() = default;

void catalog::add(definition d) {
  if (!protocol::jobs::valid_type(d.name)) {
    throw std::invalid_argument("feature name " + d.name
                                + " must match ^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$");
  }
  if (!d.actor) {
    throw std::invalid_argument("feature " + d.name + " has no actor");
  }
  if (!d.permission.empty() && !protocol::valid_permission(d.permission)) {
    throw std::invalid_argument("feature " + d.name + ": " + d.permission
                                + " is not a permission of the catalogue");
  }
  if (d.schema.is_null()) {
    d.schema = nlohmann::json{{"type", "object"}};
  }
  std::string error;
  auto validator = protocol::json_schema::validator::compile(d.schema, &error);
  if (!validator) {
    throw std::invalid_argument("feature " + d.name + ": bad parameter schema: " + error);
  }
  const std::pair<int, std::string> key{static_cast<int>(d.kind), d.name};
  if (entries_.count(key) != 0) {
    throw std::invalid_argument("feature " + d.name + " is registered twice");
  }
  entries_.emplace(key, std::make_unique<entry>(entry{std::move(d), std::move(*validator)}));
}

const catalog::entry* catalog::find(kind k, const std::string& name) const {
  auto i = entries_.find({static_cast<int>(k), name});
  return i == entries_.end() ? nullptr : i->second.get();
}

std::vector<const catalog::entry*> catalog::list(kind k) const {
  std::vector<const entry*> out;
  for (const auto& [key, e] : entries_) {
    if (key.first == static_cast<int>(k)) {
      out.push_back(e.get());
    }
  }
  return out;
}

const definition& catalog::of(const entry& e) {
  return e.def;
}

std::vector<std::pair<std::string, std::string>> catalog::check(const entry& e,
                                                                const nlohmann::json& params) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& v : e.validator.validate(params)) {
    out.emplace_back(std::move(v.pointer), std::move(v.message));
  }
  return out;
}

namespace {

// The factory travels as the actor's argument: CAF 0.17 dereferences a null argument tuple
// when a function-based actor is spawned without arguments (UBSan reports it).
caf::behavior feature_actor(caf::event_based_actor* self, actor_factory factory) {
  return factory(self);
}

} // namespace

caf::actor spawn_feature(caf::local_actor* parent, const actor_factory& factory) {
  return parent->spawn(feature_actor, factory);
}

void transaction(caf::event_based_actor* self, const invocation& in, tx_body body,
                 then_fn<nlohmann::json> then) {
  actors::kit::read_tx<nlohmann::json>(self, in.tenant_id, std::move(body), std::move(then));
}

void audited(caf::event_based_actor* self, const invocation& in, std::string action,
             audited_body body, then_fn<nlohmann::json> then) {
  protocol::auth_call call;
  call.tenant_id = in.tenant_id;
  call.who = in.caller;
  call.origin = in.origin;
  actors::kit::audited_tx<nlohmann::json>(self, call, std::move(action), std::move(body),
                                          std::move(then));
}

void once(caf::event_based_actor* self, const invocation& in, const std::string& key, tx_body body,
          then_fn<nlohmann::json> then) {
  if (in.job_id.empty()) {
    then(caf::make_error(protocol::errc::internal, "features::once is for job handlers"));
    return;
  }
  auto job_id = in.job_id;
  actors::kit::read_tx<nlohmann::json>(
    self, in.tenant_id,
    [job_id, key,
     body = std::move(body)](storage::pg_transaction& tx) -> caf::expected<nlohmann::json> {
      storage::job_repository repo{tx};
      auto claimed = repo.effect_claim(job_id, key);
      if (!claimed) {
        return std::move(claimed.error());
      }
      if (*claimed) {
        auto stored = nlohmann::json::parse(**claimed, nullptr, false);
        return stored.is_discarded() ? nlohmann::json(nullptr) : stored;
      }
      auto value = body(tx);
      if (!value) {
        return value; // the transaction rolls back, the claim with it
      }
      if (auto err = repo.effect_done(job_id, key, value->dump())) {
        return err;
      }
      return value;
    },
    std::move(then));
}

} // namespace troupe::features

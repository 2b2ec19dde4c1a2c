#include "actors/users/users_service.hpp"

#include "actors/auth/service_kit.hpp"
#include "actors/webhooks/dispatcher.hpp"
#include "protocol/principal.hpp"
#include "storage/audit.hpp"
#include "storage/auth.hpp"
#include "storage/roles.hpp"
#include "storage/webhooks.hpp"

#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using kit::client_error;
using kit::fail;
using kit::field_error;
using kit::next_fn;
using kit::ok;
using kit::reply_promise;
using protocol::errc;

const std::vector<std::string> builtin_roles{"owner", "admin", "member", "viewer"};

struct users_state {
  static inline const char* name = "users";
  std::shared_ptr<const storage::audit_secrets> audit;
};

using users_pointer = protocol::users_actor::stateful_pointer<users_state>;

json user_object(const storage::user_row& u) {
  return json::parse(storage::user_json(u));
}

// Publishes a platform event in the change's transaction (docs/webhooks.md "Platform
// events"); the dispatcher is poked once the change committed.
caf::error emit(storage::pg_transaction& tx, const std::string& type, const json& payload,
                const std::string& traceparent) {
  auto event = storage::webhook_repository{tx}.publish(type, payload.dump(), {}, traceparent);
  return event ? caf::error{} : std::move(event.error());
}

json role_json(const std::string& name, const std::vector<std::string>& permissions,
               const std::vector<std::string>& inherits, bool builtin,
               const std::string& created_at = {}, const std::string& updated_at = {}) {
  return {{"name", name},
          {"permissions", permissions},
          {"inherits", inherits},
          {"builtin", builtin},
          {"created_at", created_at.empty() ? json(nullptr) : json(created_at)},
          {"updated_at", updated_at.empty() ? json(nullptr) : json(updated_at)}};
}

json role_json(const storage::role_row& r) {
  return role_json(r.name, r.permissions, r.inherits, false, r.created_at, r.updated_at);
}

json builtin_role_json(const std::string& name) {
  return role_json(name, protocol::builtin_permissions({name}), {}, true);
}

caf::expected<protocol::role_catalog> catalog_of(storage::pg_transaction& tx) {
  storage::role_repository repo{tx};
  return repo.catalog();
}

// Nobody grants what they lack (docs/rbac.md "Escalation guards").
caf::error check_grant(const std::vector<std::string>& granted,
                       const std::vector<std::string>& caller, const std::string& what) {
  for (const auto& p : granted) {
    if (!protocol::permits(caller, p)) {
      return kit::missing_permission(p, "you cannot grant " + p + " (" + what + ")");
    }
  }
  return {};
}

// `inherits` of a role named `name`: every parent exists, no cycle.
caf::error check_parents(const std::string& name, const std::vector<std::string>& inherits,
                         const protocol::role_catalog& catalog) {
  for (std::size_t i = 0; i < inherits.size(); ++i) {
    if (!protocol::is_builtin_role(inherits[i]) && catalog.count(inherits[i]) == 0
        && inherits[i] != name) {
      return field_error("/inherits/" + std::to_string(i), "no role has this name");
    }
  }
  if (protocol::inherits_cycle(name, inherits, catalog)) {
    return field_error("/inherits", "this inheritance would make a cycle");
  }
  return {};
}

std::vector<std::string> strings(const json& in, const char* key) {
  auto i = in.find(key);
  return i == in.end() ? std::vector<std::string>{} : i->get<std::vector<std::string>>();
}

// -- users ---------------------------------------------------------------------------------------

void list_users(users_pointer self, const protocol::auth_call& call, const json& in,
                reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  kit::read_tx<std::vector<storage::user_row>>(
    self, call.tenant_id,
    [cursor, limit](storage::pg_transaction& tx) {
      storage::auth_repository repo{tx};
      return repo.users(cursor, limit);
    },
    [rp, limit](caf::expected<std::vector<storage::user_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      rp.deliver(ok(200, kit::page(*rows, limit, user_object).dump()));
    });
}

void get_user(users_pointer self, const protocol::auth_call& call, const json& in,
              reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  kit::read_tx<std::optional<storage::user_row>>(
    self, call.tenant_id,
    [id](storage::pg_transaction& tx) {
      storage::auth_repository repo{tx};
      return repo.user_by_id(id);
    },
    [rp](caf::expected<std::optional<storage::user_row>> user) mutable {
      kit::deliver_found(rp, user, user_object, "no user has this id");
    });
}

void update_user(users_pointer self, const protocol::auth_call& call, const json& in,
                 reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  std::optional<std::string> name;
  if (in.at("display_name").is_string()) {
    name = in.at("display_name").get<std::string>();
  }
  kit::audited_tx<storage::user_row>(
    self, call, "user.updated",
    [id, name, tp = call.origin.traceparent](
      storage::pg_transaction& tx,
      protocol::audit_change& change) -> caf::expected<storage::user_row> {
      storage::auth_repository repo{tx};
      auto before = repo.user_by_id(id);
      if (!before) {
        return std::move(before.error());
      }
      if (!*before) {
        return client_error(errc::not_found, "no user has this id");
      }
      auto after = repo.set_display_name(id, name);
      if (!after) {
        return std::move(after.error());
      }
      change.resource_type = "user";
      change.resource_id = id;
      change.before = user_object(**before);
      change.after = user_object(**after);
      change.invalidates.push_back("user:" + id);
      if (auto err = emit(tx, "user.updated", json{{"user", change.after}}, tp)) {
        return err;
      }
      return std::move(**after);
    },
    [self, rp](caf::expected<storage::user_row> user) mutable {
      if (!user) {
        fail(rp, user.error());
        return;
      }
      poke_webhook_dispatcher(self->system());
      rp.deliver(ok(200, user_object(*user).dump()));
    });
}

// Fails if the tenant would be left without an owner once `user` stops being one.
caf::error keep_an_owner(storage::auth_repository& repo, const storage::user_row& user) {
  if (std::find(user.roles.begin(), user.roles.end(), "owner") == user.roles.end()) {
    return {};
  }
  auto others = repo.count_with_role("owner", user.id);
  if (!others) {
    return std::move(others.error());
  }
  if (*others == 0) {
    return client_error(errc::conflict, "this is the tenant's last owner");
  }
  return {};
}

void delete_user(users_pointer self, const protocol::auth_call& call, const json& in,
                 reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  auto secrets = self->state.audit;
  kit::audited_tx<bool>(
    self, call, "user.deleted",
    [id, secrets, tp = call.origin.traceparent](
      storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<bool> {
      storage::auth_repository repo{tx};
      auto user = repo.user_by_id(id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user) {
        return client_error(errc::not_found, "no user has this id");
      }
      if (auto err = keep_an_owner(repo, **user)) {
        return err;
      }
      auto revoked = repo.delete_user(id);
      if (!revoked) {
        return std::move(revoked.error());
      }
      change.resource_type = "user";
      change.resource_id = id;
      change.subject = id;
      change.before = user_object(**user);
      change.after = json{{"api_keys_revoked", revoked->value_or(std::vector<std::string>{})}};
      change.invalidates.push_back("user:" + id);
      for (const auto& key : revoked->value_or(std::vector<std::string>{})) {
        change.invalidates.push_back("api_key:" + key);
      }
      // Erasure: the event names the user without copying their personal data.
      auto erased = user_object(**user);
      erased["email"] = nullptr;
      erased["display_name"] = nullptr;
      if (auto err = emit(tx, "user.deleted", json{{"user", erased}}, tp)) {
        return err;
      }
      if (auto scrubbed = storage::webhook_repository{tx}.scrub_user(id); !scrubbed) {
        return std::move(scrubbed.error());
      }
      // Erasure: after this entry is appended (sealed under the user's key, like every
      // earlier one about them), the key goes: their personal data reads "[erased]".
      change.after_append = [id, secrets](storage::pg_transaction& t) -> caf::error {
        storage::audit_repository audit{t, *secrets};
        auto destroyed = audit.destroy_key(id);
        return destroyed ? caf::error{} : std::move(destroyed.error());
      };
      return true;
    },
    [self, rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      poke_webhook_dispatcher(self->system());
      rp.deliver(ok(204));
    });
}

void set_roles(users_pointer self, const protocol::auth_call& call, const json& in,
               reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  const auto roles = strings(in, "roles");
  const auto caller = call.who.permissions;
  kit::audited_tx<storage::user_row>(
    self, call, "user.roles_changed",
    [id, roles, caller](storage::pg_transaction& tx,
                        protocol::audit_change& change) -> caf::expected<storage::user_row> {
      auto catalog = catalog_of(tx);
      if (!catalog) {
        return std::move(catalog.error());
      }
      for (std::size_t i = 0; i < roles.size(); ++i) {
        if (!protocol::is_builtin_role(roles[i]) && catalog->count(roles[i]) == 0) {
          return field_error("/roles/" + std::to_string(i), "no role has this name");
        }
      }
      if (auto err = check_grant(protocol::effective_permissions(roles, *catalog), caller,
                                 "assigning these roles")) {
        return err;
      }
      storage::auth_repository repo{tx};
      auto user = repo.user_by_id(id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user) {
        return client_error(errc::not_found, "no user has this id");
      }
      if (std::find(roles.begin(), roles.end(), "owner") == roles.end()) {
        if (auto err = keep_an_owner(repo, **user)) {
          return err;
        }
      }
      auto after = repo.set_roles(id, roles);
      if (!after) {
        return std::move(after.error());
      }
      change.resource_type = "user";
      change.resource_id = id;
      change.before = json{{"roles", (*user)->roles}};
      change.after = json{{"roles", (*after)->roles}};
      change.invalidates.push_back("user:" + id);
      return std::move(**after);
    },
    [rp](caf::expected<storage::user_row> user) mutable {
      if (!user) {
        fail(rp, user.error());
        return;
      }
      rp.deliver(ok(200, user_object(*user).dump()));
    });
}

// -- roles ---------------------------------------------------------------------------------------

void list_roles(users_pointer self, const protocol::auth_call& call, reply_promise rp) {
  kit::read_tx<std::vector<storage::role_row>>(
    self, call.tenant_id,
    [](storage::pg_transaction& tx) {
      storage::role_repository repo{tx};
      return repo.all();
    },
    [rp](caf::expected<std::vector<storage::role_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      json data = json::array();
      for (const auto& name : builtin_roles) {
        data.push_back(builtin_role_json(name));
      }
      for (const auto& r : *rows) {
        data.push_back(role_json(r));
      }
      rp.deliver(ok(200, json{{"data", std::move(data)}, {"next_cursor", nullptr}}.dump()));
    });
}

void get_role(users_pointer self, const protocol::auth_call& call, const json& in,
              reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  if (protocol::is_builtin_role(name)) {
    rp.deliver(ok(200, builtin_role_json(name).dump()));
    return;
  }
  kit::read_tx<std::optional<storage::role_row>>(
    self, call.tenant_id,
    [name](storage::pg_transaction& tx) {
      storage::role_repository repo{tx};
      return repo.find(name);
    },
    [rp](caf::expected<std::optional<storage::role_row>> role) mutable {
      kit::deliver_found(
        rp, role, [](const storage::role_row& r) { return role_json(r); }, "no role has this name");
    });
}

// Creates (`create`) or changes a custom role, with every check of docs/rbac.md.
void save_role(users_pointer self, const protocol::auth_call& call, const json& in, bool create,
               reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  if (protocol::is_builtin_role(name)) {
    rp.deliver(kit::problem(errc::conflict, "built-in roles cannot be created or changed"));
    return;
  }
  std::optional<std::vector<std::string>> permissions;
  std::optional<std::vector<std::string>> inherits;
  if (in.contains("permissions")) {
    permissions = strings(in, "permissions");
  }
  if (in.contains("inherits")) {
    inherits = strings(in, "inherits");
  }
  const auto caller = call.who.permissions;
  kit::audited_tx<storage::role_row>(
    self, call, create ? "role.created" : "role.updated",
    [name, permissions, inherits, caller, tp = call.origin.traceparent,
     create](storage::pg_transaction& tx,
             protocol::audit_change& change) -> caf::expected<storage::role_row> {
      auto catalog = catalog_of(tx);
      if (!catalog) {
        return std::move(catalog.error());
      }
      auto existing = catalog->find(name);
      if (create && existing != catalog->end()) {
        return client_error(errc::conflict, "a role with this name exists");
      }
      if (!create && existing == catalog->end()) {
        return client_error(errc::not_found, "no role has this name");
      }
      protocol::role_definition role;
      protocol::role_definition before;
      if (!create) {
        before = existing->second;
        role = before;
      }
      if (permissions) {
        role.permissions = *permissions;
      }
      if (inherits) {
        role.inherits = *inherits;
      }
      if (auto err = check_parents(name, role.inherits, *catalog)) {
        return err;
      }
      (*catalog)[name] = role;
      if (auto err
          = check_grant(protocol::effective_permissions({name}, *catalog), caller, "this role")) {
        return err;
      }
      storage::role_repository repo{tx};
      caf::expected<storage::role_row> saved{caf::error{}};
      if (create) {
        saved = repo.insert(name, role.permissions, role.inherits);
      } else {
        auto updated = repo.update(name, role.permissions, role.inherits);
        if (!updated) {
          return std::move(updated.error());
        }
        if (!*updated) {
          return client_error(errc::not_found, "no role has this name");
        }
        change.before = role_json(name, before.permissions, before.inherits, false);
        saved = std::move(**updated);
      }
      if (!saved) {
        return saved;
      }
      change.resource_type = "role";
      change.resource_id = name;
      change.after = role_json(*saved);
      change.invalidates.push_back("roles");
      if (auto err
          = emit(tx, create ? "role.created" : "role.updated", json{{"role", change.after}}, tp)) {
        return err;
      }
      return saved;
    },
    [self, rp, create](caf::expected<storage::role_row> role) mutable {
      if (role) {
        poke_webhook_dispatcher(self->system());
      }
      if (!role) {
        fail(rp, role.error(), "a role with this name exists");
        return;
      }
      rp.deliver(ok(create ? 201 : 200, role_json(*role).dump(),
                    create ? "/v1/roles/" + role->name : std::string{}));
    });
}

void delete_role(users_pointer self, const protocol::auth_call& call, const json& in,
                 reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  const bool force = in.value("force", false);
  if (protocol::is_builtin_role(name)) {
    rp.deliver(kit::problem(errc::conflict, "built-in roles cannot be deleted"));
    return;
  }
  kit::audited_tx<bool>(
    self, call, "role.deleted",
    [name, force, tp = call.origin.traceparent](
      storage::pg_transaction& tx, protocol::audit_change& change) -> caf::expected<bool> {
      storage::role_repository repo{tx};
      auto role = repo.find(name);
      if (!role) {
        return std::move(role.error());
      }
      if (!*role) {
        return client_error(errc::not_found, "no role has this name");
      }
      auto uses = repo.uses(name);
      if (!uses) {
        return std::move(uses.error());
      }
      const auto& [users, roles] = *uses;
      if (!force && (!users.empty() || !roles.empty())) {
        return client_error(errc::conflict,
                            "the role is assigned to " + std::to_string(users.size())
                              + " users and inherited by " + std::to_string(roles.size())
                              + " roles; delete with ?force=true to remove them");
      }
      if (force) {
        if (auto err = repo.remove_everywhere(name)) {
          return err;
        }
      }
      auto removed = repo.remove(name);
      if (!removed) {
        return std::move(removed.error());
      }
      change.resource_type = "role";
      change.resource_id = name;
      change.before = role_json(**role);
      change.after = json{{"unassigned_users", users}, {"uninherited_by", roles}};
      change.invalidates.push_back("roles");
      for (const auto& user : users) {
        change.invalidates.push_back("user:" + user);
      }
      if (auto err = emit(tx, "role.deleted", json{{"role", change.before}}, tp)) {
        return err;
      }
      return true;
    },
    [self, rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      poke_webhook_dispatcher(self->system());
      rp.deliver(ok(204));
    });
}

protocol::users_actor::behavior_type
users_service(users_pointer self, std::shared_ptr<const storage::audit_secrets> audit) {
  self->state.audit = std::move(audit);
  self->system().registry().put(protocol::users_key, self);
  return {
    [self](protocol::auth_atom, protocol::auth_call& call) -> caf::result<protocol::auth_reply> {
      auto rp = self->make_response_promise<protocol::auth_reply>();
      return kit::serve(rp, call, [self, &call, rp](const json& in) {
        const auto& op = call.op;
        if (op == "users") {
          list_users(self, call, in, rp);
        } else if (op == "user") {
          get_user(self, call, in, rp);
        } else if (op == "update_user") {
          update_user(self, call, in, rp);
        } else if (op == "delete_user") {
          delete_user(self, call, in, rp);
        } else if (op == "set_roles") {
          set_roles(self, call, in, rp);
        } else if (op == "roles") {
          list_roles(self, call, rp);
        } else if (op == "role") {
          get_role(self, call, in, rp);
        } else if (op == "create_role" || op == "update_role") {
          save_role(self, call, in, op == "create_role", rp);
        } else if (op == "delete_role") {
          delete_role(self, call, in, rp);
        } else {
          return false;
        }
        return true;
      });
    },
  };
}

} // namespace

protocol::users_actor spawn_users_service(caf::local_actor* parent,
                                          std::shared_ptr<const storage::audit_secrets> audit) {
  return parent->spawn(users_service, std::move(audit));
}

} // namespace troupe::actors

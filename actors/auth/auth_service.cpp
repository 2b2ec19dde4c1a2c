#include "actors/auth/auth_service.hpp"

#include "actors/auth/key_ring.hpp"
#include "actors/auth/password_hasher.hpp"
#include "actors/auth/service_kit.hpp"
#include "actors/webhooks/dispatcher.hpp"
#include "protocol/actors.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/jwt.hpp"
#include "protocol/logging.hpp"
#include "protocol/request_id.hpp"
#include "protocol/totp.hpp"
#include "storage/auth.hpp"
#include "storage/db.hpp"
#include "storage/webhooks.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <functional>
#include <unordered_map>

namespace troupe::actors {

namespace {

using json = nlohmann::json;
using reply_promise = kit::reply_promise;
using protocol::errc;

constexpr std::chrono::seconds db_timeout{10};
constexpr std::chrono::seconds hash_timeout{10};
constexpr std::uint64_t mfa_ttl_s = 300;
constexpr int mfa_max_failures = 5;
constexpr std::size_t recovery_code_count = 10;
constexpr std::size_t max_cached_key_tenants = 10000;

struct auth_state {
  static inline const char* name = "auth";
  auth_service_options options;
  std::unordered_map<std::string, std::string> key_tenants; // SHA-256 of a key → tenant id
};

using auth_pointer = protocol::auth_actor::stateful_pointer<auth_state>;

// -- helpers -----------------------------------------------------------------------------------

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

std::string totp_aad(const std::string& tenant, const std::string& user) {
  return "troupe totp " + tenant + " " + user;
}

// A recovery code as typed: lower case, without spaces or dashes.
std::string normalize_code(const std::string& code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') {
      continue;
    }
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
  }
  return out;
}

// Ten codes of 10 base32 characters (50 bits each), shown as xxxxx-xxxxx.
std::vector<std::string> new_recovery_codes() {
  std::vector<std::string> codes;
  for (std::size_t i = 0; i < recovery_code_count; ++i) {
    auto text = protocol::crypto::base32(protocol::crypto::random_bytes(10)).substr(0, 10);
    for (auto& c : text) {
      c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    codes.push_back(text.substr(0, 5) + "-" + text.substr(5));
  }
  return codes;
}

bool is_totp_code(const std::string& code) {
  return code.size() == 6
         && std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; });
}

using kit::client_error;
using kit::fail;
using kit::next_fn;
using kit::ok;
using kit::problem;

protocol::directory_actor directory(auth_pointer self) {
  return kit::directory(self);
}

// Reads as the tenant (platform data if `tenant` is empty) and hands the value to `next`.
template <class T>
void read(auth_pointer self, const std::string& tenant,
          std::function<caf::expected<T>(storage::auth_repository&)> body, next_fn<T> next) {
  kit::read_tx<T>(
    self, tenant,
    [body](storage::pg_transaction& tx) {
      storage::auth_repository repo{tx};
      return body(repo);
    },
    std::move(next));
}

template <class T>
using audited_body
  = std::function<caf::expected<T>(storage::auth_repository&, protocol::audit_change&)>;

// Runs `body` as audited work of `call`'s tenant (through the session's actor when
// `session` is set) and hands its value to `next` after COMMIT.
template <class T>
void audited(auth_pointer self, const protocol::auth_call& call, std::string action,
             audited_body<T> body, next_fn<T> next, const std::string& session = {}) {
  kit::audited_tx<T>(
    self, call, std::move(action),
    [body](storage::pg_transaction& tx, protocol::audit_change& change) {
      storage::auth_repository repo{tx};
      return body(repo, change);
    },
    std::move(next), session);
}

password_hasher_actor hasher(auth_pointer self) {
  return self->system().registry().get<password_hasher_actor>(protocol::hasher_key);
}

void hash_password(auth_pointer self, std::string password, next_fn<std::string> next) {
  auto h = hasher(self);
  if (!h) {
    next(caf::make_error(errc::service_unavailable, "password hasher away"));
    return;
  }
  self->request(h, hash_timeout, protocol::hash_atom_v, std::move(password))
    .then([next](std::string& hash) { next(std::move(hash)); },
          [next](caf::error& err) { next(std::move(err)); });
}

void verify_password(auth_pointer self, std::string password, std::string encoded,
                     next_fn<bool> next) {
  auto h = hasher(self);
  if (!h) {
    next(caf::make_error(errc::service_unavailable, "password hasher away"));
    return;
  }
  self->request(h, hash_timeout, protocol::verify_atom_v, std::move(password), std::move(encoded))
    .then([next](bool matches) { next(matches); },
          [next](caf::error& err) { next(std::move(err)); });
}

// The access token and the rest of `Tokens` (API.md), or service_unavailable without a key.
caf::expected<json> tokens(const auth_state& st, const std::string& tenant,
                           const storage::user_row& user, const std::string& session,
                           const std::string& refresh_token) {
  auto keys = st.options.keys ? st.options.keys->current() : nullptr;
  if (!keys || keys->signing_kid.empty()) {
    return caf::make_error(errc::service_unavailable, "no signing key yet");
  }
  const auto now = unix_now();
  json claims{{"iss", st.options.issuer},
              {"sub", user.id},
              {"tid", tenant},
              {"sid", session},
              {"iat", now},
              {"exp", now + st.options.access_ttl_s},
              {"jti", protocol::new_uuid_v7()}};
  return json{{"access_token", protocol::jwt::sign(claims, keys->signing_kid, keys->signing)},
              {"token_type", "Bearer"},
              {"expires_in", st.options.access_ttl_s},
              {"refresh_token", refresh_token},
              {"user", json::parse(storage::user_json(user))}};
}

// What a login or an MFA verification produced inside its transaction.
struct login_outcome {
  bool accepted = false;
  std::string detail; // why not (for the client)
  storage::user_row user;
  std::string session;
  std::string refresh_token;
};

// Creates a session and its first refresh token for `user` (inside a transaction).
caf::expected<login_outcome> open_session(storage::auth_repository& repo,
                                          const protocol::auth_call& call,
                                          const auth_service_options& o,
                                          const storage::user_row& user,
                                          protocol::audit_change& change) {
  login_outcome out;
  out.accepted = true;
  out.user = user;
  out.session = protocol::new_uuid_v7();
  out.refresh_token = protocol::make_opaque_token(call.tenant_id, out.session);
  if (auto err
      = repo.create_session(out.session, user.id, o.refresh_ttl_s, call.origin.ip,
                            call.origin.user_agent, protocol::crypto::sha256(out.refresh_token))) {
    return err;
  }
  change.resource_type = "session";
  change.resource_id = out.session;
  change.subject = user.id;
  change.after = json{{"user_id", user.id}, {"session_id", out.session}};
  return out;
}

void answer_tokens(auth_pointer self, reply_promise rp, const protocol::auth_call& call,
                   const login_outcome& outcome, bool waited = false) {
  auto body
    = tokens(self->state, call.tenant_id, outcome.user, outcome.session, outcome.refresh_token);
  if (body) {
    rp.deliver(ok(200, body->dump()));
    return;
  }
  auto keys = self->system().registry().get<protocol::key_manager_actor>(protocol::key_manager_key);
  if (waited || !keys) {
    rp.deliver(body.error());
    return;
  }
  // Right after start the first key may still be loading: wait for it (bounded).
  self->request(keys, std::chrono::seconds{5}, caf::get_atom_v)
    .then([self, rp, call,
           outcome](const std::string&) mutable { answer_tokens(self, rp, call, outcome, true); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
}

// -- operations ----------------------------------------------------------------------------------

void signup(auth_pointer self, const protocol::auth_call& call, const json& in, reply_promise rp) {
  const auto email = in.at("email").get<std::string>();
  std::optional<std::string> display_name;
  if (auto d = in.find("display_name"); d != in.end() && d->is_string()) {
    display_name = d->get<std::string>();
  }
  hash_password(
    self, in.at("password").get<std::string>(),
    [self, call, email, display_name, rp](caf::expected<std::string> hash) mutable {
      if (!hash) {
        fail(rp, hash.error());
        return;
      }
      kit::audited_tx<storage::user_row>(
        self, call, "user.created",
        [email, display_name, hash = *hash, tp = call.origin.traceparent](
          storage::pg_transaction& tx,
          protocol::audit_change& change) -> caf::expected<storage::user_row> {
          storage::auth_repository repo{tx};
          auto user
            = repo.insert_user(protocol::new_uuid_v7(), email, hash, display_name, {"member"});
          if (user) {
            change.resource_type = "user";
            change.resource_id = user->id;
            change.actor_type = "user";
            change.actor_id = user->id;
            change.after = json::parse(storage::user_json(*user));
            // The platform event, in the same transaction (docs/webhooks.md).
            auto event = storage::webhook_repository{tx}.publish(
              "user.created", json{{"user", change.after}}.dump(), {}, tp);
            if (!event) {
              return std::move(event.error());
            }
          }
          return user;
        },
        [self, rp](caf::expected<storage::user_row> user) mutable {
          if (!user) {
            fail(rp, user.error(), "a user with this email exists");
            return;
          }
          poke_webhook_dispatcher(self->system());
          rp.deliver(ok(201, json{{"user", json::parse(storage::user_json(*user))}}.dump(),
                        "/v1/users/" + user->id));
        });
    });
}

// A failed login: counted by the throttle, audited (denied), answered 401.
void login_failed(auth_pointer self, const protocol::auth_call& call, const std::string& account,
                  std::optional<storage::user_row> user, reply_promise rp) {
  if (auto dir = directory(self)) {
    self->send(dir, protocol::throttle_atom_v, call.tenant_id, account, true);
  }
  auto c = call;
  if (user) {
    c.origin.actor_type = "user";
    c.origin.actor_id = user->id;
  } else {
    c.origin.actor_type = "anonymous";
    c.origin.actor_id.clear();
  }
  const std::string user_id = user ? user->id : std::string{};
  audited<bool>(
    self, c, "auth.login",
    [user_id](storage::auth_repository&, protocol::audit_change& change) -> caf::expected<bool> {
      change.outcome = "denied";
      change.resource_type = "user";
      change.resource_id = user_id;
      change.after = json{{"reason", user_id.empty() ? "unknown email" : "wrong password"}};
      return true;
    },
    [rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      rp.deliver(problem(errc::invalid_credentials, "the email or the password is wrong"));
    });
}

void login_succeeded(auth_pointer self, const protocol::auth_call& call,
                     const storage::user_row& user, reply_promise rp) {
  auto c = call;
  c.origin.actor_type = "user";
  c.origin.actor_id = user.id;
  if (user.mfa_enabled) {
    const auto challenge = protocol::new_uuid_v7();
    const auto token = protocol::make_opaque_token(call.tenant_id, challenge);
    audited<bool>(
      self, c, "auth.login",
      [user, challenge, token](storage::auth_repository& repo,
                               protocol::audit_change& change) -> caf::expected<bool> {
        if (auto err = repo.create_challenge(challenge, user.id, protocol::crypto::sha256(token),
                                             mfa_ttl_s)) {
          return err;
        }
        change.resource_type = "user";
        change.resource_id = user.id;
        change.after = json{{"mfa_required", true}};
        return true;
      },
      [rp, token](caf::expected<bool> done) mutable {
        if (!done) {
          fail(rp, done.error());
          return;
        }
        rp.deliver(ok(
          200, json{{"mfa_required", true}, {"mfa_token", token}, {"methods", {"totp"}}}.dump()));
      });
    return;
  }
  const auto options = self->state.options;
  audited<login_outcome>(
    self, c, "auth.login",
    [c, options, user](storage::auth_repository& repo, protocol::audit_change& change) {
      return open_session(repo, c, options, user, change);
    },
    [self, rp, c](caf::expected<login_outcome> outcome) mutable {
      if (!outcome) {
        fail(rp, outcome.error());
        return;
      }
      answer_tokens(self, rp, c, *outcome);
    });
}

void login(auth_pointer self, const protocol::auth_call& call, const json& in, reply_promise rp) {
  const auto email = in.at("email").get<std::string>();
  const auto password = in.at("password").get<std::string>();
  const auto account = email + "|" + call.origin.ip;
  auto dir = directory(self);
  if (!dir) {
    rp.deliver(caf::make_error(errc::service_unavailable, "directory away"));
    return;
  }
  self->request(dir, db_timeout, protocol::throttle_atom_v, call.tenant_id, account)
    .then(
      [self, call, email, password, account, rp](std::uint32_t wait) mutable {
        if (wait > 0) {
          auto r = problem(errc::rate_limited, "too many failed logins for this account from "
                                               "this address; try again later");
          r.retry_after = wait;
          rp.deliver(std::move(r));
          return;
        }
        read<std::optional<storage::user_row>>(
          self, call.tenant_id,
          [email](storage::auth_repository& repo) { return repo.user_by_email(email); },
          [self, call, password, account,
           rp](caf::expected<std::optional<storage::user_row>> user) mutable {
            if (!user) {
              fail(rp, user.error());
              return;
            }
            // An unknown email is checked against a dummy hash: both failures take as long.
            const auto encoded = *user && !(*user)->password_hash.empty()
                                   ? (*user)->password_hash
                                   : self->state.options.dummy_hash;
            verify_password(self, password, encoded,
                            [self, call, account, found = std::move(*user),
                             rp](caf::expected<bool> matches) mutable {
                              if (!matches) {
                                fail(rp, matches.error());
                                return;
                              }
                              if (!*matches || !found) {
                                login_failed(self, call, account, found, rp);
                                return;
                              }
                              if (auto d = directory(self)) {
                                self->send(d, protocol::throttle_atom_v, call.tenant_id, account,
                                           false);
                              }
                              login_succeeded(self, call, *found, rp);
                            });
          });
      },
      [rp](caf::error& err) mutable { fail(rp, err); });
}

// Accepts `code` for `user` (a TOTP code of a step newer than the last accepted one, or an
// unused recovery code), recording its use. False if it is neither.
caf::expected<bool> accept_code(storage::auth_repository& repo, const auth_service_options& o,
                                const std::string& tenant, const storage::user_row& user,
                                const std::string& code) {
  if (is_totp_code(code)) {
    auto secret
      = protocol::crypto::open(o.totp_seal_key, user.totp_secret, totp_aad(tenant, user.id));
    if (!secret) {
      return false;
    }
    auto step = protocol::totp::verify(*secret, code, static_cast<std::uint64_t>(unix_now()));
    if (!step || static_cast<std::int64_t>(*step) <= user.totp_last_step) {
      return false;
    }
    return repo.use_totp_step(user.id, static_cast<std::int64_t>(*step));
  }
  return repo.use_recovery_code(user.id, protocol::crypto::sha256(normalize_code(code)));
}

void mfa_verify(auth_pointer self, const protocol::auth_call& call, const json& in,
                reply_promise rp) {
  const auto token = in.at("mfa_token").get<std::string>();
  const auto code = in.at("code").get<std::string>();
  auto ids = protocol::opaque_token_ids(token);
  if (!ids) {
    rp.deliver(problem(errc::invalid_mfa_code, "unknown mfa_token"));
    return;
  }
  if (ids->first != call.tenant_id) {
    rp.deliver(problem(errc::tenant_mismatch, "the mfa_token belongs to another tenant"));
    return;
  }
  const auto options = self->state.options;
  audited<login_outcome>(
    self, call, "auth.mfa_verify",
    [call, options, token, code,
     challenge_id = ids->second](storage::auth_repository& repo,
                                 protocol::audit_change& change) -> caf::expected<login_outcome> {
      auto challenge = repo.challenge(challenge_id);
      if (!challenge) {
        return std::move(challenge.error());
      }
      if (!*challenge
          || !protocol::crypto::constant_time_equal((*challenge)->secret_hash,
                                                    protocol::crypto::sha256(token))) {
        return client_error(errc::invalid_mfa_code, "unknown mfa_token");
      }
      const auto& c = **challenge;
      if (c.used) {
        return client_error(errc::invalid_mfa_code, "the mfa_token was used already");
      }
      if (c.expired) {
        return client_error(errc::invalid_mfa_code, "the mfa_token expired; log in again");
      }
      if (c.failures >= mfa_max_failures) {
        return client_error(errc::invalid_mfa_code, "too many wrong codes; log in again");
      }
      auto user = repo.user_by_id(c.user_id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user || !(*user)->mfa_enabled) {
        return client_error(errc::invalid_mfa_code, "MFA is not enabled for this user");
      }
      change.actor_type = "user";
      change.actor_id = c.user_id;
      change.resource_type = "user";
      change.resource_id = c.user_id;
      auto accepted = accept_code(repo, options, call.tenant_id, **user, code);
      if (!accepted) {
        return std::move(accepted.error());
      }
      if (!*accepted) {
        if (auto err = repo.challenge_failed(c.id)) {
          return err;
        }
        change.outcome = "denied";
        login_outcome out;
        out.detail = "the code is wrong or was used already";
        return out;
      }
      if (auto err = repo.challenge_used(c.id)) {
        return err;
      }
      auto out = open_session(repo, call, options, **user, change);
      change.resource_type = "user";
      change.resource_id = c.user_id;
      return out;
    },
    [self, rp, call](caf::expected<login_outcome> outcome) mutable {
      if (!outcome) {
        fail(rp, outcome.error());
        return;
      }
      if (!outcome->accepted) {
        rp.deliver(problem(errc::invalid_mfa_code, outcome->detail));
        return;
      }
      answer_tokens(self, rp, call, *outcome);
    });
}

void refresh(auth_pointer self, const protocol::auth_call& call, const json& in, reply_promise rp) {
  const auto token = in.at("refresh_token").get<std::string>();
  auto ids = protocol::opaque_token_ids(token);
  if (!ids) {
    rp.deliver(problem(errc::unauthenticated, "unknown refresh token"));
    return;
  }
  if (ids->first != call.tenant_id) {
    rp.deliver(problem(errc::tenant_mismatch, "the refresh token belongs to another tenant"));
    return;
  }
  const auto session = ids->second;
  const auto options = self->state.options;
  audited<login_outcome>(
    self, call, "auth.refresh",
    [call, options, token, session](storage::auth_repository& repo, protocol::audit_change& change)
      -> caf::expected<login_outcome> {
      const auto hash = protocol::crypto::sha256(token);
      auto found = repo.refresh_token(hash);
      if (!found) {
        return std::move(found.error());
      }
      if (!*found || (*found)->session_id != session) {
        return client_error(errc::unauthenticated, "unknown refresh token");
      }
      const auto& row = **found;
      if (row.session.revoked) {
        return client_error(errc::token_revoked, "the session was revoked");
      }
      change.actor_type = "user";
      change.actor_id = row.session.user_id;
      change.resource_type = "session";
      change.resource_id = session;
      change.subject = row.session.user_id;
      if (row.spent) {
        // Reuse (RFC 9700 4.14.2): the family is compromised, revoke all of it.
        auto revoked = repo.revoke_session(session, "", "refresh token reuse");
        if (!revoked) {
          return std::move(revoked.error());
        }
        change.action = "auth.refresh_reuse";
        change.outcome = "denied";
        change.invalidates.push_back("session:" + session);
        login_outcome out;
        out.detail = "the refresh token was used already; the session is revoked";
        return out;
      }
      if (row.session.expired) {
        return client_error(errc::token_expired, "the session expired; log in again");
      }
      auto user = repo.user_by_id(row.session.user_id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user) {
        return client_error(errc::token_revoked, "the user no longer exists");
      }
      login_outcome out;
      out.accepted = true;
      out.user = **user;
      out.session = session;
      out.refresh_token = protocol::make_opaque_token(call.tenant_id, session);
      if (auto err = repo.rotate(session, hash, protocol::crypto::sha256(out.refresh_token),
                                 call.origin.ip, call.origin.user_agent)) {
        return err;
      }
      return out;
    },
    [self, rp, call](caf::expected<login_outcome> outcome) mutable {
      if (!outcome) {
        fail(rp, outcome.error());
        return;
      }
      if (!outcome->accepted) {
        rp.deliver(problem(errc::token_revoked, outcome->detail));
        return;
      }
      answer_tokens(self, rp, call, *outcome);
    },
    session);
}

// Revokes one session of the caller: logout (their own) or DELETE /v1/auth/sessions/{id}.
void revoke_session(auth_pointer self, const protocol::auth_call& call, const std::string& id,
                    const std::string& action, reply_promise rp) {
  const auto user = call.who.user_id;
  audited<bool>(
    self, call, action,
    [id, user, action](storage::auth_repository& repo,
                       protocol::audit_change& change) -> caf::expected<bool> {
      auto revoked = repo.revoke_session(id, user, action == "auth.logout" ? "logout" : "revoked");
      if (!revoked) {
        return std::move(revoked.error());
      }
      if (!*revoked) {
        return client_error(errc::not_found, "no live session of yours has this id");
      }
      change.resource_type = "session";
      change.resource_id = id;
      change.invalidates.push_back("session:" + id);
      return true;
    },
    [rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      rp.deliver(ok(204));
    },
    id);
}

void list_sessions(auth_pointer self, const protocol::auth_call& call, const json& in,
                   reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  const auto user = call.who.user_id;
  const auto current = call.who.session_id;
  read<std::vector<storage::session_row>>(
    self, call.tenant_id,
    [user, cursor, limit](storage::auth_repository& repo) {
      return repo.sessions_of(user, cursor, limit);
    },
    [rp, limit, current](caf::expected<std::vector<storage::session_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      auto render = [&current](const auto& s) {
        return json{{"id", s.id}, {"created_at", s.created_at}, {"last_used_at", s.last_used_at},
                    {"ip", s.ip}, {"user_agent", s.user_agent}, {"current", s.id == current}};
      };
      rp.deliver(ok(200, kit::page(*rows, limit, render).dump()));
    });
}

void change_password(auth_pointer self, const protocol::auth_call& call, const json& in,
                     reply_promise rp) {
  const auto current = in.at("current_password").get<std::string>();
  const auto replacement = in.at("new_password").get<std::string>();
  const auto user_id = call.who.user_id;
  read<std::optional<storage::user_row>>(
    self, call.tenant_id,
    [user_id](storage::auth_repository& repo) { return repo.user_by_id(user_id); },
    [self, call, current, replacement,
     rp](caf::expected<std::optional<storage::user_row>> user) mutable {
      if (!user) {
        fail(rp, user.error());
        return;
      }
      if (!*user) {
        rp.deliver(problem(errc::token_revoked, "the user no longer exists"));
        return;
      }
      const auto encoded
        = (*user)->password_hash.empty() ? self->state.options.dummy_hash : (*user)->password_hash;
      verify_password(
        self, current, encoded, [self, call, replacement, rp](caf::expected<bool> matches) mutable {
          if (!matches) {
            fail(rp, matches.error());
            return;
          }
          if (!*matches) {
            rp.deliver(problem(errc::invalid_credentials, "the current password is wrong"));
            return;
          }
          hash_password(
            self, replacement, [self, call, rp](caf::expected<std::string> hash) mutable {
              if (!hash) {
                fail(rp, hash.error());
                return;
              }
              const auto changed = call.who.user_id;
              const auto keep = call.who.session_id;
              audited<bool>(
                self, call, "auth.password_changed",
                [user_id = changed, keep,
                 hash = *hash](storage::auth_repository& repo,
                               protocol::audit_change& change) -> caf::expected<bool> {
                  if (auto err = repo.set_password(user_id, hash)) {
                    return err;
                  }
                  auto revoked = repo.revoke_sessions_of(user_id, keep, "password changed");
                  if (!revoked) {
                    return std::move(revoked.error());
                  }
                  change.resource_type = "user";
                  change.resource_id = user_id;
                  change.after = json{{"sessions_revoked", revoked->size()}};
                  for (const auto& id : *revoked) {
                    change.invalidates.push_back("session:" + id);
                  }
                  return true;
                },
                [rp](caf::expected<bool> done) mutable {
                  if (!done) {
                    fail(rp, done.error());
                    return;
                  }
                  rp.deliver(ok(204));
                });
            });
        });
    });
}

void totp_enroll(auth_pointer self, const protocol::auth_call& call, reply_promise rp) {
  const auto secret = protocol::crypto::random_bytes(20);
  const auto user_id = call.who.user_id;
  const auto sealed = protocol::crypto::seal(self->state.options.totp_seal_key, secret,
                                             totp_aad(call.tenant_id, user_id));
  const auto issuer = self->state.options.issuer;
  audited<std::string>(
    self, call, "auth.mfa_enrolled",
    [user_id, sealed](storage::auth_repository& repo,
                      protocol::audit_change& change) -> caf::expected<std::string> {
      auto user = repo.user_by_id(user_id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user) {
        return client_error(errc::token_revoked, "the user no longer exists");
      }
      if ((*user)->mfa_enabled) {
        return client_error(errc::conflict, "MFA is on already; disable it to enroll again");
      }
      if (auto err = repo.set_totp_pending(user_id, sealed)) {
        return err;
      }
      change.resource_type = "user";
      change.resource_id = user_id;
      return (*user)->email;
    },
    [rp, secret, issuer](caf::expected<std::string> email) mutable {
      if (!email) {
        fail(rp, email.error());
        return;
      }
      rp.deliver(ok(200, json{{"secret", protocol::crypto::base32(secret)},
                              {"otpauth_uri", protocol::totp::otpauth_uri(issuer, *email, secret)}}
                           .dump()));
    });
}

void totp_activate(auth_pointer self, const protocol::auth_call& call, const json& in,
                   reply_promise rp) {
  const auto code = in.at("code").get<std::string>();
  const auto user_id = call.who.user_id;
  const auto options = self->state.options;
  const auto tenant = call.tenant_id;
  audited<std::vector<std::string>>(
    self, call, "auth.mfa_enabled",
    [user_id, code, options, tenant](storage::auth_repository& repo, protocol::audit_change& change)
      -> caf::expected<std::vector<std::string>> {
      auto user = repo.user_by_id(user_id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user) {
        return client_error(errc::token_revoked, "the user no longer exists");
      }
      if ((*user)->mfa_enabled) {
        return client_error(errc::conflict, "MFA is on already");
      }
      if ((*user)->totp_pending.empty()) {
        return client_error(errc::conflict, "no TOTP enrollment is pending; enroll first");
      }
      auto secret = protocol::crypto::open(options.totp_seal_key, (*user)->totp_pending,
                                           totp_aad(tenant, user_id));
      if (!secret) {
        return caf::make_error(errc::internal, "pending TOTP secret does not open");
      }
      auto step = is_totp_code(code)
                    ? protocol::totp::verify(*secret, code, static_cast<std::uint64_t>(unix_now()))
                    : std::nullopt;
      if (!step) {
        return client_error(errc::invalid_mfa_code, "the code is wrong");
      }
      if (auto err = repo.activate_totp(user_id, static_cast<std::int64_t>(*step))) {
        return err;
      }
      auto codes = new_recovery_codes();
      std::vector<std::string> hashes;
      for (const auto& c : codes) {
        hashes.push_back(protocol::crypto::sha256(normalize_code(c)));
      }
      if (auto err = repo.set_recovery_codes(user_id, hashes)) {
        return err;
      }
      change.resource_type = "user";
      change.resource_id = user_id;
      change.after = json{{"mfa_enabled", true}};
      change.invalidates.push_back("user:" + user_id);
      return codes;
    },
    [rp](caf::expected<std::vector<std::string>> codes) mutable {
      if (!codes) {
        fail(rp, codes.error());
        return;
      }
      rp.deliver(ok(200, json{{"recovery_codes", *codes}}.dump()));
    });
}

void totp_disable(auth_pointer self, const protocol::auth_call& call, const json& in,
                  reply_promise rp) {
  const auto code = in.at("code").get<std::string>();
  const auto user_id = call.who.user_id;
  const auto options = self->state.options;
  const auto tenant = call.tenant_id;
  audited<bool>(
    self, call, "auth.mfa_disabled",
    [user_id, code, options, tenant](storage::auth_repository& repo,
                                     protocol::audit_change& change) -> caf::expected<bool> {
      auto user = repo.user_by_id(user_id);
      if (!user) {
        return std::move(user.error());
      }
      if (!*user) {
        return client_error(errc::token_revoked, "the user no longer exists");
      }
      if (!(*user)->mfa_enabled) {
        return client_error(errc::conflict, "MFA is not enabled");
      }
      auto accepted = accept_code(repo, options, tenant, **user, code);
      if (!accepted) {
        return std::move(accepted.error());
      }
      if (!*accepted) {
        return client_error(errc::invalid_mfa_code, "the code is wrong or was used already");
      }
      if (auto err = repo.disable_totp(user_id)) {
        return err;
      }
      change.resource_type = "user";
      change.resource_id = user_id;
      change.after = json{{"mfa_enabled", false}};
      change.invalidates.push_back("user:" + user_id);
      return true;
    },
    [rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      rp.deliver(ok(204));
    });
}

json api_key_json(const storage::api_key_row& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"prefix", k.prefix},
          {"permissions", k.permissions},
          {"created_at", k.created_at},
          {"expires_at", k.expires_at ? json(*k.expires_at) : json(nullptr)}};
}

void create_api_key(auth_pointer self, const protocol::auth_call& call, const json& in,
                    reply_promise rp) {
  const auto name = in.at("name").get<std::string>();
  const auto permissions = in.at("permissions").get<std::vector<std::string>>();
  std::optional<std::string> expires_at;
  if (auto e = in.find("expires_at"); e != in.end() && e->is_string()) {
    expires_at = e->get<std::string>();
  }
  // Nobody hands out what they do not have (docs/auth.md "API keys").
  for (const auto& p : permissions) {
    if (!protocol::permits(call.who.permissions, p)) {
      auto r = problem(errc::forbidden, "an API key cannot have a permission its creator lacks");
      r.required_permission = p;
      rp.deliver(std::move(r));
      return;
    }
  }
  const auto key = "trp_" + protocol::crypto::base64url(protocol::crypto::random_bytes(32));
  const auto creator = call.who.user_id;
  const auto tenant = call.tenant_id;
  audited<storage::api_key_row>(
    self, call, "api_key.created",
    [tenant, name, permissions, expires_at, key,
     creator](storage::auth_repository& repo,
              protocol::audit_change& change) -> caf::expected<storage::api_key_row> {
      auto row
        = repo.insert_api_key(tenant, protocol::new_uuid_v7(), name, key.substr(0, 12),
                              protocol::crypto::sha256(key), permissions, creator, expires_at);
      if (row) {
        change.resource_type = "api_key";
        change.resource_id = row->id;
        change.after = api_key_json(*row);
      }
      return row;
    },
    [rp, key](caf::expected<storage::api_key_row> row) mutable {
      if (!row) {
        fail(rp, row.error());
        return;
      }
      auto body = api_key_json(*row);
      body["key"] = key;
      rp.deliver(ok(201, body.dump(), "/v1/api-keys/" + row->id));
    });
}

void list_api_keys(auth_pointer self, const protocol::auth_call& call, const json& in,
                   reply_promise rp) {
  const auto limit = in.at("limit").get<std::uint32_t>();
  const auto cursor = in.value("cursor", std::string{});
  read<std::vector<storage::api_key_row>>(
    self, call.tenant_id,
    [cursor, limit](storage::auth_repository& repo) { return repo.api_keys(cursor, limit); },
    [rp, limit](caf::expected<std::vector<storage::api_key_row>> rows) mutable {
      if (!rows) {
        fail(rp, rows.error());
        return;
      }
      rp.deliver(ok(200, kit::page(*rows, limit, api_key_json).dump()));
    });
}

void revoke_api_key(auth_pointer self, const protocol::auth_call& call, const json& in,
                    reply_promise rp) {
  const auto id = in.at("id").get<std::string>();
  audited<bool>(
    self, call, "api_key.revoked",
    [id](storage::auth_repository& repo, protocol::audit_change& change) -> caf::expected<bool> {
      auto row = repo.revoke_api_key(id);
      if (!row) {
        return std::move(row.error());
      }
      if (!*row) {
        return client_error(errc::not_found, "no API key has this id");
      }
      change.resource_type = "api_key";
      change.resource_id = id;
      change.before = api_key_json(**row);
      change.invalidates.push_back("api_key:" + id);
      return true;
    },
    [rp](caf::expected<bool> done) mutable {
      if (!done) {
        fail(rp, done.error());
        return;
      }
      rp.deliver(ok(204));
    });
}

protocol::auth_actor::behavior_type auth_service(auth_pointer self, auth_service_options options) {
  self->state.options = std::move(options);
  self->system().registry().put(protocol::auth_key, self);
  return {
    [self](protocol::auth_atom, protocol::auth_call& call) -> caf::result<protocol::auth_reply> {
      auto rp = self->make_response_promise<protocol::auth_reply>();
      return kit::serve(rp, call, [self, &call, rp](const json& in) {
        const auto& op = call.op;
        if (op == "signup") {
          signup(self, call, in, rp);
        } else if (op == "login") {
          login(self, call, in, rp);
        } else if (op == "mfa_verify") {
          mfa_verify(self, call, in, rp);
        } else if (op == "refresh") {
          refresh(self, call, in, rp);
        } else if (op == "logout") {
          revoke_session(self, call, call.who.session_id, "auth.logout", rp);
        } else if (op == "revoke_session") {
          revoke_session(self, call, in.at("id").get<std::string>(), "session.revoked", rp);
        } else if (op == "sessions") {
          list_sessions(self, call, in, rp);
        } else if (op == "password") {
          change_password(self, call, in, rp);
        } else if (op == "totp_enroll") {
          totp_enroll(self, call, rp);
        } else if (op == "totp_activate") {
          totp_activate(self, call, in, rp);
        } else if (op == "totp_disable") {
          totp_disable(self, call, in, rp);
        } else if (op == "create_api_key") {
          create_api_key(self, call, in, rp);
        } else if (op == "api_keys") {
          list_api_keys(self, call, in, rp);
        } else if (op == "revoke_api_key") {
          revoke_api_key(self, call, in, rp);
        } else {
          return false;
        }
        return true;
      });
    },
    [self](protocol::resolve_atom, const protocol::credential& c) -> caf::result<std::string> {
      if (c.kind != "api_key") {
        return caf::make_error(errc::unauthenticated, "this credential names no tenant");
      }
      const auto digest = protocol::crypto::sha256(c.token);
      if (auto i = self->state.key_tenants.find(digest); i != self->state.key_tenants.end()) {
        return i->second;
      }
      auto rp = self->make_response_promise<std::string>();
      read<std::optional<std::string>>(
        self, {}, [digest](storage::auth_repository& repo) { return repo.api_key_tenant(digest); },
        [self, rp, digest](caf::expected<std::optional<std::string>> tenant) mutable {
          if (!tenant) {
            rp.deliver(std::move(tenant.error()));
            return;
          }
          if (!*tenant) {
            rp.deliver(caf::make_error(errc::unauthenticated, "unknown API key"));
            return;
          }
          auto& cache = self->state.key_tenants;
          if (cache.size() >= max_cached_key_tenants) {
            cache.clear();
          }
          cache[digest] = **tenant;
          rp.deliver(**tenant);
        });
      return rp;
    },
  };
}

} // namespace

protocol::auth_actor spawn_auth_service(caf::local_actor* parent, auth_service_options options) {
  return parent->spawn(auth_service, std::move(options));
}

} // namespace troupe::actors

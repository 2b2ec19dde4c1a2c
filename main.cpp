// Composition root: load configuration → actor system → supervision tree → wait for a
// signal or an escalation → shut down in order.

#include "actors/audit/audit_service.hpp"
#include "actors/auth/auth_service.hpp"
#include "actors/auth/key_manager.hpp"
#include "actors/auth/password_hasher.hpp"
#include "actors/directory/directory.hpp"
#include "actors/features/features.hpp"
#include "actors/functions/functions.hpp"
#include "actors/jobs/builtin_jobs.hpp"
#include "actors/jobs/dispatcher.hpp"
#include "actors/jobs/jobs_service.hpp"
#include "actors/metrics/metrics.hpp"
#include "actors/metrics/metrics_registry.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "actors/tenants/tenants_service.hpp"
#include "actors/users/users_service.hpp"
#include "actors/webhooks/dispatcher.hpp"
#include "actors/webhooks/http_client.hpp"
#include "actors/webhooks/webhooks_service.hpp"
#include "config/settings.hpp"
#include "http/front.hpp"
#include "http/routes/admin.hpp"
#include "protocol/actors.hpp"
#include "protocol/crypto.hpp"
#include "protocol/directory.hpp"
#include "protocol/error.hpp"
#include "protocol/logging.hpp"
#include "protocol/type_ids.hpp"
#include "storage/audit.hpp"
#include "storage/db.hpp"
#include "storage/embedded_postgres.hpp"
#include "storage/migrations.hpp"
#include "storage/pg.hpp"

#include <caf/actor_registry.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <netdb.h>
#include <optional>
#include <pthread.h>
#include <string>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

#ifndef TROUPE_VERSION
#define TROUPE_VERSION "0.0.0"
#endif

namespace {

using namespace troupe;

constexpr int exit_usage = 2;

// Binds and listens on address:port. Returns the descriptor, or -1 with `error` set.
int open_listener(const std::string& address, std::uint16_t port, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const auto service = std::to_string(port);
  if (const int rc = ::getaddrinfo(address.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) {
      break;
    }
    error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

std::string bracketed(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

// The signals `serve` waits for. Blocked in main before any thread exists (the logger's
// included), so that every thread inherits the mask and only sigwait sees them.
sigset_t shutdown_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1); // main's own "stop waiting" wake-up
  return signals;
}

// How this process reaches PostgreSQL: as the owner (migrations) and as the server's role.
struct database_endpoints {
  std::string owner_conninfo;
  std::string app_conninfo;
};

// Starts the embedded PostgreSQL when database.url is empty (kept in `embedded`), works out
// both logins, and applies pending migrations. Blocking; runs before the actor system.
std::optional<database_endpoints>
prepare_database(const config::settings& cfg,
                 std::unique_ptr<storage::embedded_postgres>& embedded) {
  auto log = protocol::make_logger("storage");
  database_endpoints endpoints;
  if (cfg.database_url.empty()) {
    storage::embedded_options options;
    options.dir = cfg.database_embedded_dir;
    std::string error;
    embedded = storage::embedded_postgres::start(options, error);
    if (!embedded) {
      log->error(protocol::event("embedded postgres failed").add("error", error).str());
      return std::nullopt;
    }
    for (const auto& note : embedded->notes()) {
      log->info(protocol::event("embedded postgres").add("note", note).str());
    }
    log->info(protocol::event("embedded postgres ready")
                .add("dir", embedded->dir())
                .add("pid", embedded->pid())
                .add("initialised_now", embedded->initialised_now() ? "true" : "false")
                .str());
    endpoints.owner_conninfo = embedded->conninfo("postgres");
    endpoints.app_conninfo = embedded->conninfo("troupe_app");
  } else {
    std::string error;
    auto app
      = storage::with_login(cfg.database_url, "troupe_app", cfg.database_app_password, error);
    if (!app) {
      log->error(protocol::event("bad database.url").add("error", error).str());
      return std::nullopt;
    }
    endpoints.owner_conninfo = cfg.database_url;
    endpoints.app_conninfo = *app;
  }
  std::string error;
  auto owner = storage::pg_connection::connect(endpoints.owner_conninfo, error);
  if (!owner) {
    log->error(protocol::event("cannot connect to postgres").add("error", error).str());
    return std::nullopt;
  }
  auto applied = storage::migrate(*owner);
  if (!applied) {
    log->error(protocol::event("migrations failed")
                 .add("error", protocol::describe(applied.error()))
                 .add("context", caf::to_string(applied.error().context()))
                 .str());
    return std::nullopt;
  }
  for (const int version : *applied) {
    log->info(protocol::event("migration applied").add("version", version).str());
  }
  auto version = storage::current_version(*owner);
  log->info(protocol::event("schema ready").add("version", version ? *version : -1).str());
  return endpoints;
}

// The secret kept in `path` (its first line), or a new one made by `make` and written there
// (0600, directory 0700). nullopt (logged) if it can be neither read nor stored. `created`
// tells which.
std::optional<std::string> load_or_create_secret(const std::string& path,
                                                 const std::function<std::string()>& make,
                                                 bool& created) {
  created = false;
  if (std::ifstream in{path}; in) {
    std::string secret;
    std::getline(in, secret);
    if (!secret.empty()) {
      return secret;
    }
  }
  auto log = protocol::make_logger("node");
  std::string secret;
  try {
    secret = make();
  } catch (const std::exception& e) {
    log->error(
      protocol::event("cannot generate secret").add("path", path).add("error", e.what()).str());
    return std::nullopt;
  }
  ::mkdir("./var", 0700);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const std::string line = secret + "\n";
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    log->error(protocol::event("cannot store secret")
                 .add("path", path)
                 .add("error", std::strerror(errno))
                 .str());
    if (fd >= 0) {
      ::close(fd);
    }
    return std::nullopt;
  }
  ::close(fd);
  created = true;
  return secret;
}

// admin.token, or the one kept in ./var/admin-token, or a new one: "tra_" and 32 random
// base64url characters, written there (0600) and printed once on stderr. Never logged.
std::optional<std::string> resolve_admin_token(const config::settings& cfg) {
  if (!cfg.admin_token.empty()) {
    return cfg.admin_token;
  }
  const std::string path = "./var/admin-token";
  bool created = false;
  auto token = load_or_create_secret(
    path, [] { return "tra_" + protocol::crypto::base64url(protocol::crypto::random_bytes(24)); },
    created);
  if (token && created) {
    // On stderr, not in the log stream on stdout: a secret has no business in collected logs.
    std::cerr << "troupe: admin token (shown once; kept in " << path << "): " << *token
              << std::endl;
    protocol::make_logger("node")->info(
      protocol::event("admin token generated").add("path", path).str());
  }
  return token;
}

// auth.key-encryption-key as 32 bytes: 64 hex digits or 43 base64url characters.
std::optional<std::string> decode_key_encryption_key(const std::string& text) {
  auto key
    = text.size() == 64 ? protocol::crypto::unhex(text) : protocol::crypto::unbase64url(text);
  if (!key || key->size() != 32) {
    return std::nullopt;
  }
  return key;
}

// auth.key-encryption-key, or the one kept in ./var/key-encryption-key, or a new one (32
// random bytes, base64url) written there. It encrypts the audit log's data keys (and, with
// the auth issue, the signing keys): losing it makes that data unreadable. Never printed.
std::optional<std::string> resolve_key_encryption_key(const config::settings& cfg) {
  if (!cfg.auth_key_encryption_key.empty()) {
    return decode_key_encryption_key(cfg.auth_key_encryption_key);
  }
  const std::string path = "./var/key-encryption-key";
  bool created = false;
  auto text = load_or_create_secret(
    path, [] { return protocol::crypto::base64url(protocol::crypto::random_bytes(32)); }, created);
  if (!text) {
    return std::nullopt;
  }
  auto log = protocol::make_logger("node");
  auto key = decode_key_encryption_key(*text);
  if (!key) {
    log->error(protocol::event("unusable key encryption key").add("path", path).str());
    return std::nullopt;
  }
  if (created) {
    log->info(protocol::event("key encryption key generated: back it up with the database")
                .add("path", path)
                .str());
  }
  return key;
}

// 0 if the key-encryption key is the one the database was set up with (recorded at the first
// start), else 2 (configuration) or 1 (database), with one line saying so.
int check_key_encryption_key(const database_endpoints& database, const std::string& kek) {
  auto log = protocol::make_logger("storage");
  std::string error;
  auto owner = storage::pg_connection::connect(database.owner_conninfo, error);
  if (!owner) {
    log->error(protocol::event("cannot connect to postgres").add("error", error).str());
    return 1;
  }
  auto matches = storage::key_matches_database(*owner, kek);
  if (!matches) {
    log->error(protocol::event("cannot check the key encryption key")
                 .add("error", protocol::describe(matches.error()))
                 .str());
    return 1;
  }
  if (!*matches) {
    std::cerr << "troupe: auth.key-encryption-key: not the key this database was set up with "
                 "(the audit log's personal data would be unreadable)\n";
    return exit_usage;
  }
  return 0;
}

// Binds the HTTP listener before anything slow starts, so a port in use fails at once.
int listen_or_log(const config::settings& cfg) {
  std::string listen_error;
  const int listen_fd = open_listener(cfg.http_address, cfg.http_port, listen_error);
  if (listen_fd < 0) {
    protocol::make_logger("node")->error(protocol::event("cannot listen")
                                           .add("address", cfg.http_address)
                                           .add("port", static_cast<std::int64_t>(cfg.http_port))
                                           .add("error", listen_error)
                                           .str());
  }
  return listen_fd;
}

// Registers what `spawn` started under `key` before the next child starts: actors register
// themselves only once first scheduled, and the HTTP front must find every service at once.
template <class Spawn>
std::function<caf::actor(caf::local_actor*)> registered(caf::atom_value key, Spawn spawn) {
  return [key, spawn](caf::local_actor* self) {
    auto started = caf::actor_cast<caf::actor>(spawn(self));
    self->system().registry().put(key, started);
    return started;
  };
}

int serve(const config::settings& cfg, const std::shared_ptr<http::tls_context>& tls,
          const database_endpoints& database, int listen_fd, const std::string& admin_token,
          const std::string& key_encryption_key) {
  sigset_t signals = shutdown_signals();
  auto log = protocol::make_logger("node");

  caf::actor_system_config caf_cfg;
  caf_cfg.add_message_types<caf::id_block::troupe>();
  caf_cfg.add_error_category(
    caf::atom("troupe"), [](std::uint8_t code, caf::atom_value, const caf::message&) {
      return "troupe:" + protocol::to_string(static_cast<protocol::errc>(code));
    });
  // The io threads and the detached actors are threads of their own: match CAF's workers
  // to the cores instead of CAF's default of at least four.
  caf_cfg.set("scheduler.max-threads",
              static_cast<std::size_t>(std::max(2u, std::thread::hardware_concurrency())));
  caf::actor_system sys{caf_cfg};

  auto metrics = std::make_shared<actors::metrics_registry>();
  http::front_config front;
  front.server.listen_fd = listen_fd;
  front.server.threads = cfg.http_threads;
  front.server.max_body_bytes = cfg.http_max_body_bytes;
  front.server.max_header_bytes = cfg.http_max_header_bytes;
  front.server.read_timeout = std::chrono::milliseconds{cfg.http_read_timeout_ms};
  front.server.idle_timeout = std::chrono::milliseconds{cfg.http_idle_timeout_ms};
  front.server.max_connections = cfg.http_max_connections;
  front.server.tls = tls;
  front.scheme = tls ? "https" : "http";
  front.shutdown_grace = std::chrono::milliseconds{cfg.http_shutdown_grace_ms};
  front.display_address = bracketed(cfg.http_address);
  front.svc.system = &sys;
  front.svc.base_domain = cfg.http_base_domain;
  front.svc.admin_token_digest = http::routes::admin_token_digest(admin_token);
  front.metrics = metrics;
  front.log = protocol::make_logger("http");

  std::vector<actors::child_spec> children;
  children.push_back(
    {"metrics", registered(protocol::metrics_key, [metrics](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_metrics(self, metrics));
     })});
  storage::db_pool_options pool;
  pool.conninfo = database.app_conninfo;
  pool.size = cfg.database_pool_size;
  children.push_back({"db_pool", registered(protocol::db_pool_key, [pool](caf::local_actor* self) {
                        return caf::actor_cast<caf::actor>(storage::spawn_db_pool(self, pool));
                      })});
  actors::argon2_params argon2;
  argon2.memory_kib = cfg.auth_argon2_memory_kib;
  argon2.iterations = cfg.auth_argon2_iterations;
  argon2.parallelism = cfg.auth_argon2_parallelism;
  const std::size_t hash_workers = std::max(1u, std::thread::hardware_concurrency());
  children.push_back({"password_hasher", [argon2, hash_workers](caf::local_actor* self) {
                        auto hasher = actors::spawn_password_hasher(self, argon2, hash_workers);
                        self->system().registry().put(protocol::hasher_key, hasher);
                        return caf::actor_cast<caf::actor>(hasher);
                      }});
  // Signing keys first: the auth service and the tenants read the snapshot it publishes.
  auto ring = std::make_shared<actors::key_ring>();
  actors::key_manager_options keys;
  keys.ring = ring;
  keys.seal_key
    = protocol::crypto::hkdf_sha256(key_encryption_key, "troupe", "signing key sealing v1", 32);
  keys.rotation_s = static_cast<std::int64_t>(cfg.auth_key_rotation_days) * 86400;
  keys.access_ttl_s = cfg.auth_access_ttl_s;
  children.push_back(
    {"key_manager", registered(protocol::key_manager_key, [keys](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_key_manager(self, keys));
     })});
  actors::auth_service_options auth;
  auth.keys = ring;
  auth.issuer = cfg.auth_issuer;
  auth.access_ttl_s = cfg.auth_access_ttl_s;
  auth.refresh_ttl_s = cfg.auth_refresh_ttl_s;
  auth.totp_seal_key
    = protocol::crypto::hkdf_sha256(key_encryption_key, "troupe", "totp secret sealing v1", 32);
  // Computed once here (one argon2 run at start), never on an actor's thread.
  auth.dummy_hash = actors::dummy_hash(argon2);
  children.push_back({"auth", registered(protocol::auth_key, [auth](caf::local_actor* self) {
                        return caf::actor_cast<caf::actor>(actors::spawn_auth_service(self, auth));
                      })});
  auto audit = storage::audit_secrets::derive(key_encryption_key);
  children.push_back(
    {"tenants", registered(protocol::tenants_key, [audit, metrics](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_tenants_service(self, audit, metrics));
     })});
  children.push_back({"users", registered(protocol::users_key, [audit](caf::local_actor* self) {
                        return caf::actor_cast<caf::actor>(
                          actors::spawn_users_service(self, audit));
                      })});
  children.push_back(
    {"audit_reader", registered(protocol::audit_reader_key, [audit](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_audit_reader(self, audit));
     })});
  actors::audit_pruner_options pruner;
  pruner.owner_conninfo = database.owner_conninfo;
  pruner.retention_days = cfg.audit_retention_days;
  pruner.secrets = audit;
  children.push_back(
    {"audit_pruner", registered(actors::audit_pruner_key, [pruner](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_audit_pruner(self, pruner));
     })});
  // Events and webhooks: the service answers /v1 calls, the dispatcher delivers.
  const auto webhook_seal_key
    = protocol::crypto::hkdf_sha256(key_encryption_key, "troupe", "webhook secret sealing v1", 32);
  actors::webhooks_service_options webhooks;
  webhooks.seal_key = webhook_seal_key;
  webhooks.allow_private_targets = cfg.webhooks_allow_private_targets;
  children.push_back(
    {"webhooks_service", registered(protocol::webhooks_key, [webhooks](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_webhooks_service(self, webhooks));
     })});
  actors::webhook_dispatcher_options dispatcher;
  dispatcher.node = cfg.cluster_node_id;
  dispatcher.seal_key = webhook_seal_key;
  dispatcher.retry_schedule = cfg.webhooks_retry_schedule;
  dispatcher.timeout = std::chrono::milliseconds{cfg.webhooks_timeout_ms};
  dispatcher.disable_after = cfg.webhooks_disable_after;
  dispatcher.allow_private_targets = cfg.webhooks_allow_private_targets;
  dispatcher.metrics = metrics;
  children.push_back(
    {"webhook_dispatcher",
     registered(actors::webhook_dispatcher_key, [dispatcher](caf::local_actor* self) {
       return actors::spawn_webhook_dispatcher(self, dispatcher);
     })});
  actors::directory_options directory;
  directory.idle_timeout = std::chrono::seconds{cfg.tenants_idle_timeout_s};
  directory.metrics = metrics;
  directory.tenant.audit = audit;
  directory.tenant.metrics = metrics;
  directory.tenant.keys = ring;
  directory.tenant.issuer = cfg.auth_issuer;
  directory.tenant.max_failures = cfg.auth_max_failures;
  auto limit_of = [](const config::rate_window& w) {
    return actors::rate_limit{static_cast<std::uint32_t>(w.requests),
                              static_cast<std::uint32_t>(w.window_s)};
  };
  directory.tenant.principal_limit = limit_of(cfg.limits_principal);
  directory.tenant.tenant_limit = limit_of(cfg.limits_tenant);
  directory.tenant.anonymous_limit = limit_of(cfg.limits_anonymous);
  directory.tenant.inbound_limit = limit_of(cfg.limits_inbound);
  directory.tenant.quota = cfg.quota_requests_per_month;
  directory.tenant.idempotency_ttl_s = static_cast<std::uint32_t>(cfg.idempotency_ttl_s);
  directory.loader = [&sys] {
    return sys.registry().get<protocol::tenant_loader_actor>(protocol::tenants_key);
  };
  children.push_back(
    {"directory", registered(protocol::directory_key, [directory](caf::local_actor* self) {
       return caf::actor_cast<caf::actor>(actors::spawn_directory(self, directory));
     })});
  // Jobs, schedules and functions: the catalogue of feature actors is filled once, here; a
  // bad registration stops the server before it listens.
  auto catalog = std::make_shared<features::catalog>();
  {
    actors::builtin_jobs_options builtins;
    builtins.test_handlers = cfg.jobs_test_handlers;
    builtins.audit_retention_days = cfg.audit_retention_days;
    actors::http_client_options client;
    client.timeout = std::chrono::seconds{300};
    client.allow_private_targets = cfg.webhooks_allow_private_targets;
    client.response_body_limit = 65536;
    builtins.client = std::make_shared<actors::http_client>(client);
    try {
      actors::add_builtin_jobs(*catalog, builtins);
      actors::add_functions(*catalog);
    } catch (const std::invalid_argument& e) {
      log->error(protocol::event("bad feature registration").add("error", e.what()).str());
      return 1;
    }
  }
  // Marks this process's job notifications, which its own dispatcher ignores (it is poked
  // directly).
  const auto jobs_token = protocol::crypto::hex(protocol::crypto::random_bytes(8));
  actors::jobs_service_options jobs;
  jobs.catalog = catalog;
  jobs.token = jobs_token;
  children.push_back({"jobs_service", registered(actors::jobs_key, [jobs](caf::local_actor* self) {
                        return caf::actor_cast<caf::actor>(actors::spawn_jobs_service(self, jobs));
                      })});
  actors::job_dispatcher_options job_dispatcher;
  job_dispatcher.node = cfg.cluster_node_id;
  job_dispatcher.catalog = catalog;
  job_dispatcher.concurrency = cfg.jobs_concurrency;
  job_dispatcher.retry_base_ms = cfg.jobs_retry_base_ms;
  job_dispatcher.retry_max_ms = cfg.jobs_retry_max_ms;
  job_dispatcher.metrics = metrics;
  job_dispatcher.listen_conninfo = database.app_conninfo;
  job_dispatcher.token = jobs_token;
  children.push_back(
    {"job_dispatcher",
     registered(actors::job_dispatcher_key, [job_dispatcher](caf::local_actor* self) {
       return actors::spawn_job_dispatcher(self, job_dispatcher);
     })});
  children.push_back({"http_front", [front](caf::local_actor* self) {
                        return http::spawn_http_front(self, front);
                      }});
  actors::supervisor_options options;
  options.metrics = metrics;
  auto node = actors::spawn_supervisor(sys, "node_supervisor", std::move(children), options);
  sys.registry().put(protocol::node_key, node);

  // Closing main's copy of the listening socket when shutdown starts means that, once
  // http_front has closed its dup, the kernel refuses new connections instead of queueing them.
  std::atomic<int> listener{listen_fd};
  auto close_listener = [&listener] {
    if (const int fd = listener.exchange(-1); fd >= 0) {
      ::close(fd);
    }
  };
  std::thread signal_thread{[&signals, &close_listener, node, log] {
    int received = 0;
    std::optional<std::chrono::steady_clock::time_point> first;
    while (sigwait(&signals, &received) == 0 && received != SIGUSR1) {
      const auto now = std::chrono::steady_clock::now();
      if (first) {
        // Tools such as timeout(1) signal the process and its group at once; a repeat within
        // a second is the same request. A later one means "stop now".
        if (now - *first < std::chrono::seconds{1}) {
          continue;
        }
        log->warn(protocol::event("second signal, exiting at once")
                    .add("signal", strsignal(received))
                    .str());
        protocol::shutdown_logging();
        std::_Exit(1);
      }
      first = now;
      log->info(protocol::event("shutdown requested").add("signal", strsignal(received)).str());
      close_listener();
      caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    }
  }};

  caf::error reason;
  {
    caf::scoped_actor self{sys};
    self->monitor(node);
    self->receive([&](caf::down_msg& msg) { reason = msg.reason; });
  }
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  sys.registry().erase(protocol::node_key);
  sys.registry().erase(protocol::metrics_key);
  sys.registry().erase(protocol::db_pool_key);
  sys.registry().erase(protocol::hasher_key);
  sys.registry().erase(protocol::tenants_key);
  sys.registry().erase(protocol::directory_key);
  sys.registry().erase(protocol::webhooks_key);
  sys.registry().erase(actors::webhook_dispatcher_key);
  sys.registry().erase(actors::jobs_key);
  sys.registry().erase(actors::job_dispatcher_key);
  sys.registry().erase(actors::audit_pruner_key);
  close_listener();
  if (reason && reason != caf::exit_reason::user_shutdown) {
    log->error(protocol::event("node supervisor gave up").add("reason", sys.render(reason)).str());
    return 1;
  }
  log->info(protocol::event("stopped").str());
  return 0;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const auto& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::cout << troupe::config::help_text();
      return 0;
    }
  }
  if (args.empty()) {
    std::cerr << troupe::config::help_text();
    return exit_usage;
  }
  const auto command = args.front();
  args.erase(args.begin());
  if (command == "help") {
    std::cout << troupe::config::help_text();
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::cout << "troupe " << TROUPE_VERSION << '\n';
    return 0;
  }
  if (command != "serve" && command != "migrate") {
    std::cerr << "troupe: unknown command \"" << command << "\" (see troupe --help)\n";
    return exit_usage;
  }
  auto loaded = troupe::config::load(args, troupe::config::process_environment());
  if (auto* err = std::get_if<troupe::config::config_error>(&loaded)) {
    std::cerr << err->message << '\n';
    return exit_usage;
  }
  const auto& cfg = std::get<troupe::config::settings>(loaded);
  // Certificates are part of the configuration: unusable ones are a usage error, found now.
  std::shared_ptr<troupe::http::tls_context> tls;
  if (!cfg.http_tls_cert.empty()) {
    std::string error;
    tls = troupe::http::load_tls_context(cfg.http_tls_cert, cfg.http_tls_key, error);
    if (!tls) {
      std::cerr << "troupe: " << error << '\n';
      return exit_usage;
    }
  }
  if (!cfg.auth_key_encryption_key.empty()
      && !decode_key_encryption_key(cfg.auth_key_encryption_key)) {
    std::cerr << "troupe: auth.key-encryption-key: must be 32 bytes, as 64 hex digits or 43 "
                 "base64url characters\n";
    return exit_usage;
  }
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN); // a closed stdout or peer must not kill the server
  troupe::protocol::setup_logging(cfg.log_format == "json" ? troupe::protocol::log_format::json
                                                           : troupe::protocol::log_format::text,
                                  cfg.log_level);
  // Declared before the actor system inside serve(): stopped after every actor is gone.
  std::unique_ptr<troupe::storage::embedded_postgres> embedded;
  int listen_fd = -1;
  if (command == "serve") {
    listen_fd = listen_or_log(cfg);
    if (listen_fd < 0) {
      troupe::protocol::shutdown_logging();
      return 1;
    }
  }
  const auto database = prepare_database(cfg, embedded);
  int rc = 1;
  if (database) {
    const auto admin_token = command == "serve" ? resolve_admin_token(cfg) : std::nullopt;
    const auto kek = command == "serve" ? resolve_key_encryption_key(cfg) : std::nullopt;
    if (command == "migrate") {
      rc = 0;
    } else if (admin_token && kek) {
      rc = check_key_encryption_key(*database, *kek);
      if (rc == 0) {
        rc = serve(cfg, tls, *database, listen_fd, *admin_token, *kek);
      } else if (listen_fd >= 0) {
        ::close(listen_fd);
      }
    }
  } else if (listen_fd >= 0) {
    ::close(listen_fd);
  }
  if (embedded) {
    embedded->stop();
    auto log = troupe::protocol::make_logger("storage");
    for (const auto& note : embedded->notes()) {
      log->info(troupe::protocol::event("embedded postgres").add("note", note).str());
    }
  }
  troupe::protocol::shutdown_logging();
  return rc;
}

} // namespace

int main(int argc, char** argv) {
  // Exceptions belong to start-up (STYLE.md 7); one that gets this far is reported, not thrown.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "troupe: fatal: " << e.what() << '\n';
    return 1;
  }
}

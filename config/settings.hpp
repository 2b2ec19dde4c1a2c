#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace troupe::config {

/// A rate-limit window: at most `requests` per `window_s` seconds (API.md `limits.*`).
struct rate_window {
  std::int64_t requests = 0;
  std::int64_t window_s = 0;
};

/// Every configuration key of API.md's Configuration table, plus the HTTP limits of
/// docs/configuration.md. Field names are the keys with '.' and '-' turned into '_'.
struct settings {
  // [http]
  std::string http_address = "127.0.0.1";
  std::uint16_t http_port = 8080;
  std::uint32_t http_threads = 0; ///< 0 in the defaults: resolved to the number of cores by load()
  std::uint64_t http_max_body_bytes = 1048576;
  std::string http_base_domain = "localhost";
  std::string http_tls_cert;
  std::string http_tls_key;
  std::uint32_t http_max_header_bytes = 16384;
  std::uint32_t http_read_timeout_ms = 10000;
  std::uint32_t http_idle_timeout_ms = 60000;
  std::uint32_t http_max_connections = 10000;
  std::uint32_t http_shutdown_grace_ms = 10000;
  // [database]
  std::string database_url;
  std::string database_embedded_dir = "./var/pg";
  std::uint32_t database_pool_size = 8;
  std::string database_app_password; ///< password of the troupe_app role (docs/storage.md)
  // [tenants]
  std::uint32_t tenants_idle_timeout_s = 300;
  // [admin]
  std::string admin_token;
  // [auth]
  std::string auth_issuer = "troupe";
  std::uint32_t auth_access_ttl_s = 900;
  std::uint32_t auth_refresh_ttl_s = 2592000;
  std::uint32_t auth_max_failures = 10;
  std::uint32_t auth_key_rotation_days = 30;
  std::string auth_key_encryption_key;
  std::uint32_t auth_argon2_memory_kib = 19456;
  std::uint32_t auth_argon2_iterations = 2;
  std::uint32_t auth_argon2_parallelism = 1;
  // [limits]
  rate_window limits_principal{600, 60};
  rate_window limits_tenant{6000, 60};
  rate_window limits_anonymous{30, 60};
  rate_window limits_inbound{6000, 60};
  // [quota]
  std::uint64_t quota_requests_per_month = 0;
  // [idempotency]
  std::uint32_t idempotency_ttl_s = 86400;
  // [audit]
  std::uint32_t audit_retention_days = 0;
  // [webhooks]
  std::vector<std::uint32_t> webhooks_retry_schedule{5, 300, 1800, 7200, 18000, 36000, 36000};
  std::uint32_t webhooks_timeout_ms = 15000;
  std::uint32_t webhooks_disable_after = 10;
  bool webhooks_allow_private_targets = false;
  // [jobs]
  std::uint32_t jobs_retry_base_ms = 1000;
  std::uint32_t jobs_retry_max_ms = 3600000;
  std::uint32_t jobs_concurrency = 16;
  bool jobs_test_handlers = false;
  // [cluster]
  std::string cluster_node_id; ///< empty in the defaults: resolved to the host name by load()
  std::uint16_t cluster_port = 0;
  std::vector<std::string> cluster_seeds;
  // [log]
  std::string log_level = "info";
  std::string log_format = "text";
};

/// Why a configuration was refused. `key` names the offending key (or `--config-file`);
/// `message` is the one line printed before exiting with code 2.
struct config_error {
  std::string key;
  std::string message;
};

/// The process environment as name → value (only `TROUPE_*` entries matter).
using environment = std::map<std::string, std::string>;

/// Builds settings from defaults, then the INI file named by `--config-file=PATH` (if any),
/// then `TROUPE_<GROUP>_<KEY>` variables, then `--group.key=value` arguments; later wins.
/// `args` are the arguments after the command name. Any unknown key, malformed value or
/// unreadable file is an error; nothing is silently ignored.
[[nodiscard]] std::variant<settings, config_error> load(const std::vector<std::string>& args,
                                                        const environment& env);

/// Reads the calling process's environment into an `environment`.
environment process_environment();

/// The `--help` text: usage, commands, and every key with its default and meaning.
std::string help_text();

/// Every key (`group.key`) in the order help_text() lists them.
std::vector<std::string> known_keys();

} // namespace troupe::config

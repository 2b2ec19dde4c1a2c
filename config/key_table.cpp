#include "config/key_table.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

namespace troupe::config {

namespace {

constexpr std::uint64_t max_rate_number = std::numeric_limits<std::uint32_t>::max();
constexpr std::size_t max_retry_steps = 32;
constexpr std::uint64_t max_retry_delay_s = 31536000; // one year

bool is_text(const value& v) {
  return v.type == value::kind::bare || v.type == value::kind::quoted;
}

// Integers in values are bare words; "5" in quotes is a string, as in CAF's INI syntax.
std::optional<std::uint64_t> to_unsigned(const list_element& element, std::uint64_t max) {
  if (element.quoted) {
    return std::nullopt;
  }
  return parse_unsigned(element.text, max);
}

template <class T>
key_codec unsigned_codec(T settings::*member, std::uint64_t min,
                         std::uint64_t max = std::numeric_limits<T>::max()) {
  return {
    "an integer " + std::to_string(min) + ".." + std::to_string(max),
    [member, min, max](settings& s, const value& v) {
      if (v.type != value::kind::bare) {
        return false;
      }
      const auto number = parse_unsigned(v.text, max);
      if (!number || *number < min) {
        return false;
      }
      s.*member = static_cast<T>(*number);
      return true;
    },
    [member](const settings& s) { return std::to_string(s.*member); },
  };
}

key_codec string_codec(std::string settings::*member, bool required = false) {
  return {
    required ? "a non-empty string" : "a string",
    [member, required](settings& s, const value& v) {
      if (!is_text(v) || (required && v.text.empty())) {
        return false;
      }
      s.*member = v.text;
      return true;
    },
    [member](const settings& s) { return quote(s.*member); },
  };
}

key_codec choice_codec(std::string settings::*member, std::vector<std::string> choices) {
  std::string expected = "one of ";
  for (const auto& choice : choices) {
    expected += (&choice == &choices.front() ? "" : ", ") + choice;
  }
  return {
    std::move(expected),
    [member, choices](settings& s, const value& v) {
      if (!is_text(v) || std::find(choices.begin(), choices.end(), v.text) == choices.end()) {
        return false;
      }
      s.*member = v.text;
      return true;
    },
    [member](const settings& s) { return quote(s.*member); },
  };
}

key_codec bool_codec(bool settings::*member) {
  return {
    "true or false",
    [member](settings& s, const value& v) {
      if (v.type != value::kind::bare || (v.text != "true" && v.text != "false")) {
        return false;
      }
      s.*member = v.text == "true";
      return true;
    },
    [member](const settings& s) { return std::string{s.*member ? "true" : "false"}; },
  };
}

key_codec rate_codec(rate_window settings::*member) {
  return {
    "a list [requests,seconds] of two positive integers",
    [member](settings& s, const value& v) {
      if (v.type != value::kind::list || v.elements.size() != 2) {
        return false;
      }
      const auto requests = to_unsigned(v.elements[0], max_rate_number);
      const auto window = to_unsigned(v.elements[1], max_rate_number);
      if (!requests || !window || *requests == 0 || *window == 0) {
        return false;
      }
      s.*member = {static_cast<std::int64_t>(*requests), static_cast<std::int64_t>(*window)};
      return true;
    },
    [member](const settings& s) {
      const auto& window = s.*member;
      return "[" + std::to_string(window.requests) + "," + std::to_string(window.window_s) + "]";
    },
  };
}

key_codec schedule_codec(std::vector<std::uint32_t> settings::*member) {
  return {
    "a list of at most " + std::to_string(max_retry_steps) + " integers 0.."
      + std::to_string(max_retry_delay_s),
    [member](settings& s, const value& v) {
      if (v.type != value::kind::list || v.elements.size() > max_retry_steps) {
        return false;
      }
      std::vector<std::uint32_t> delays;
      for (const auto& element : v.elements) {
        const auto delay = to_unsigned(element, max_retry_delay_s);
        if (!delay) {
          return false;
        }
        delays.push_back(static_cast<std::uint32_t>(*delay));
      }
      s.*member = std::move(delays);
      return true;
    },
    [member](const settings& s) {
      std::string text = "[";
      for (const auto delay : s.*member) {
        text += (text.size() > 1 ? "," : "") + std::to_string(delay);
      }
      return text + "]";
    },
  };
}

// `host:port` with a port 1..65535; an IPv6 host is written in brackets: `[::1]:7000`.
bool is_host_port(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return false;
  }
  const auto host = std::string_view{text}.substr(0, colon);
  const auto port = parse_unsigned(std::string_view{text}.substr(colon + 1), 65535);
  if (!port || *port == 0) {
    return false;
  }
  if (host.find_first_of(" \t") != std::string_view::npos) {
    return false;
  }
  if (host.find(':') != std::string_view::npos) {
    return host.size() > 2 && host.front() == '[' && host.back() == ']';
  }
  return host.find_first_of("[]") == std::string_view::npos;
}

key_codec seeds_codec(std::vector<std::string> settings::*member) {
  return {
    "a list of host:port strings with ports 1..65535",
    [member](settings& s, const value& v) {
      if (v.type != value::kind::list) {
        return false;
      }
      std::vector<std::string> seeds;
      for (const auto& element : v.elements) {
        if (!is_host_port(element.text)) {
          return false;
        }
        seeds.push_back(element.text);
      }
      s.*member = std::move(seeds);
      return true;
    },
    [member](const settings& s) {
      std::string text = "[";
      for (const auto& seed : s.*member) {
        text += (text.size() > 1 ? "," : "") + quote(seed);
      }
      return text + "]";
    },
  };
}

std::vector<key_descriptor> make_key_table() {
  using s = settings;
  const settings defaults;
  std::vector<key_descriptor> table;
  // The default shown in help is rendered from settings' member initialisers, unless a note
  // explains a default that load() resolves or that means "absent".
  const auto key = [&](std::string name, key_codec codec, std::string description,
                       std::string default_note = {}) {
    auto default_text = default_note.empty() ? codec.render(defaults) : std::move(default_note);
    table.push_back(
      {std::move(name), std::move(default_text), std::move(description), std::move(codec)});
  };
  key("http.address", string_codec(&s::http_address, true), "address the HTTP server listens on");
  key("http.port", unsigned_codec(&s::http_port, 0, 65535),
      "port the HTTP server listens on (0 = any free port)");
  key("http.threads", unsigned_codec(&s::http_threads, 1, 256), "threads serving HTTP",
      "(number of cores)");
  key("http.max-body-bytes", unsigned_codec(&s::http_max_body_bytes, 1),
      "largest request body accepted, in bytes (larger: 413 payload-too-large)");
  key("http.base-domain", string_codec(&s::http_base_domain),
      "a tenant is also found by the host name {slug}.{http.base-domain}");
  key("http.tls-cert", string_codec(&s::http_tls_cert),
      "PEM certificate chain file; with http.tls-key serves HTTPS (empty: plain HTTP)");
  key("http.tls-key", string_codec(&s::http_tls_key),
      "PEM private key file of http.tls-cert (set both or neither)");
  key("http.max-header-bytes", unsigned_codec(&s::http_max_header_bytes, 1024, 1048576),
      "largest request line plus headers accepted, in bytes");
  key("http.read-timeout-ms", unsigned_codec(&s::http_read_timeout_ms, 1),
      "a whole request must arrive within this many milliseconds");
  key("http.idle-timeout-ms", unsigned_codec(&s::http_idle_timeout_ms, 1),
      "an idle keep-alive connection is closed after this many milliseconds");
  key("http.max-connections", unsigned_codec(&s::http_max_connections, 1, 1000000),
      "most HTTP connections open at once");
  key("http.shutdown-grace-ms", unsigned_codec(&s::http_shutdown_grace_ms, 1),
      "at shutdown, requests in flight get this many milliseconds to finish");
  key("database.url", string_codec(&s::database_url), "libpq connection string or URL",
      "(empty: embedded PostgreSQL in database.embedded-dir)");
  key("database.embedded-dir", string_codec(&s::database_embedded_dir),
      "data directory of the embedded PostgreSQL");
  key("database.pool-size", unsigned_codec(&s::database_pool_size, 1, 1024),
      "PostgreSQL connections per node");
  key("database.app-password", string_codec(&s::database_app_password),
      "password of the server's login role troupe_app (database.url logs in as the owner)",
      "(empty: no password, e.g. peer or trust authentication)");
  key("tenants.idle-timeout-s", unsigned_codec(&s::tenants_idle_timeout_s, 1),
      "a tenant actor idle for this many seconds is passivated");
  key("admin.token", string_codec(&s::admin_token),
      "bearer token of the platform API /admin/v1; a generated one is printed once",
      "(empty: generated at first start, kept in ./var/admin-token)");
  key("auth.issuer", string_codec(&s::auth_issuer, true), "iss claim of access tokens");
  key("auth.access-ttl-s", unsigned_codec(&s::auth_access_ttl_s, 1),
      "lifetime of access tokens, in seconds");
  key("auth.refresh-ttl-s", unsigned_codec(&s::auth_refresh_ttl_s, 1),
      "lifetime of refresh tokens, in seconds");
  key("auth.max-failures", unsigned_codec(&s::auth_max_failures, 1),
      "failed logins per account and IP within 15 minutes before 429 rate-limited");
  key("auth.key-rotation-days", unsigned_codec(&s::auth_key_rotation_days, 1),
      "days between rotations of the token signing key");
  key("auth.key-encryption-key", string_codec(&s::auth_key_encryption_key),
      "encrypts the signing keys at rest (a secret)",
      "(empty: generated at first start, kept in ./var/)");
  key("auth.argon2-memory-kib", unsigned_codec(&s::auth_argon2_memory_kib, 8, 4194304),
      "argon2id memory cost of password hashes, in KiB");
  key("auth.argon2-iterations", unsigned_codec(&s::auth_argon2_iterations, 1, 100),
      "argon2id passes over the memory per password hash");
  key("auth.argon2-parallelism", unsigned_codec(&s::auth_argon2_parallelism, 1, 64),
      "argon2id lanes (threads) per password hash");
  key("limits.principal", rate_codec(&s::limits_principal),
      "[requests,seconds] per principal (user or API key)");
  key("limits.tenant", rate_codec(&s::limits_tenant), "[requests,seconds] per tenant");
  key("limits.anonymous", rate_codec(&s::limits_anonymous),
      "[requests,seconds] per client IP on signup, login and mfa/verify");
  key("limits.inbound", rate_codec(&s::limits_inbound),
      "[requests,seconds] per inbound webhook source");
  key("quota.requests-per-month", unsigned_codec(&s::quota_requests_per_month, 0),
      "requests per tenant and calendar month (0 = no quota)");
  key("idempotency.ttl-s", unsigned_codec(&s::idempotency_ttl_s, 1),
      "seconds an idempotency key and its stored response are kept");
  key("audit.retention-days", unsigned_codec(&s::audit_retention_days, 0),
      "days audit entries are kept (0 = forever)");
  key("webhooks.retry-schedule", schedule_codec(&s::webhooks_retry_schedule),
      "seconds before each retry of a failed delivery");
  key("webhooks.timeout-ms", unsigned_codec(&s::webhooks_timeout_ms, 1),
      "a delivery succeeds on a 2xx answer within this many milliseconds");
  key("webhooks.disable-after", unsigned_codec(&s::webhooks_disable_after, 1),
      "consecutive failed deliveries that disable an endpoint");
  key("webhooks.allow-private-targets", bool_codec(&s::webhooks_allow_private_targets),
      "allow webhook and http.request targets on private, loopback or link-local addresses");
  key("jobs.retry-base-ms", unsigned_codec(&s::jobs_retry_base_ms, 1),
      "retry delay after attempt n: min(jobs.retry-max-ms, jobs.retry-base-ms * 2^(n-1))");
  key("jobs.retry-max-ms", unsigned_codec(&s::jobs_retry_max_ms, 1),
      "longest retry delay of a job, in milliseconds (at least jobs.retry-base-ms)");
  key("jobs.concurrency", unsigned_codec(&s::jobs_concurrency, 1, 10000),
      "jobs running at once on a node");
  key("jobs.test-handlers", bool_codec(&s::jobs_test_handlers),
      "enable the job types test.noop, test.sleep and test.fail");
  key("cluster.node-id", string_codec(&s::cluster_node_id), "name of this node in the cluster",
      "(host name)");
  key("cluster.port", unsigned_codec(&s::cluster_port, 0, 65535),
      "port for traffic between nodes (0 = no cluster)");
  key("cluster.seeds", seeds_codec(&s::cluster_seeds),
      R"(host:port of nodes to join, e.g. ["node1:7000","node2:7000"])");
  key("log.level",
      choice_codec(&s::log_level, {"trace", "debug", "info", "warn", "error", "critical", "off"}),
      "least severe log level written");
  key("log.format", choice_codec(&s::log_format, {"text", "json"}),
      "text, or json for one JSON object per line");
  return table;
}

} // namespace

const std::vector<key_descriptor>& key_table() {
  static const auto table = make_key_table();
  return table;
}

const key_descriptor* find_key(std::string_view name) {
  const auto& table = key_table();
  const auto i = std::find_if(table.begin(), table.end(),
                              [name](const key_descriptor& key) { return key.name == name; });
  return i == table.end() ? nullptr : &*i;
}

const std::vector<std::string>& key_groups() {
  static const auto groups = [] {
    std::vector<std::string> result;
    for (const auto& key : key_table()) {
      auto group = key.name.substr(0, key.name.find('.'));
      if (std::find(result.begin(), result.end(), group) == result.end()) {
        result.push_back(std::move(group));
      }
    }
    return result;
  }();
  return groups;
}

std::string environment_name(std::string_view key) {
  std::string name = "TROUPE_";
  for (const auto c : key) {
    if (c == '.' || c == '-') {
      name += '_';
    } else if (c >= 'a' && c <= 'z') {
      name += static_cast<char>(c - 'a' + 'A');
    } else {
      name += c;
    }
  }
  return name;
}

} // namespace troupe::config

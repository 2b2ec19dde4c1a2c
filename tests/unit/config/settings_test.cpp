#define CAF_SUITE config.settings

#include "config/settings.hpp"

#include "config/key_table.hpp"

#include <caf/test/unit_test.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

using namespace troupe::config;

namespace {

using args = std::vector<std::string>;

/// A value for every key that differs from its default, written as in an INI file.
const std::vector<std::pair<std::string, std::string>> samples = {
  {"http.address", "\"0.0.0.0\""},
  {"http.port", "9090"},
  {"http.threads", "3"},
  {"http.max-body-bytes", "2097152"},
  {"http.base-domain", "\"example.test\""},
  {"http.tls-cert", "\"/etc/troupe/cert.pem\""},
  {"http.tls-key", "\"/etc/troupe/key.pem\""},
  {"http.max-header-bytes", "8192"},
  {"http.read-timeout-ms", "5000"},
  {"http.idle-timeout-ms", "30000"},
  {"http.max-connections", "500"},
  {"http.shutdown-grace-ms", "2000"},
  {"database.url", "\"postgresql://troupe@db/troupe\""},
  {"database.embedded-dir", "\"/var/lib/troupe/pg\""},
  {"database.pool-size", "4"},
  {"database.app-password", "\"s3cret\""},
  {"tenants.idle-timeout-s", "60"},
  {"admin.token", "\"s3cret\""},
  {"auth.issuer", "\"issuer.test\""},
  {"auth.access-ttl-s", "600"},
  {"auth.refresh-ttl-s", "86400"},
  {"auth.max-failures", "5"},
  {"auth.key-rotation-days", "7"},
  {"auth.key-encryption-key", "\"kek\""},
  {"auth.argon2-memory-kib", "65536"},
  {"auth.argon2-iterations", "3"},
  {"auth.argon2-parallelism", "2"},
  {"limits.principal", "[100,10]"},
  {"limits.tenant", "[1000,10]"},
  {"limits.anonymous", "[5,1]"},
  {"limits.inbound", "[50,5]"},
  {"quota.requests-per-month", "1000000"},
  {"idempotency.ttl-s", "3600"},
  {"audit.retention-days", "365"},
  {"webhooks.retry-schedule", "[1,2,3]"},
  {"webhooks.timeout-ms", "1000"},
  {"webhooks.disable-after", "3"},
  {"webhooks.allow-private-targets", "true"},
  {"jobs.retry-base-ms", "10"},
  {"jobs.retry-max-ms", "1000"},
  {"jobs.concurrency", "4"},
  {"jobs.test-handlers", "true"},
  {"cluster.node-id", "\"node-a\""},
  {"cluster.port", "7000"},
  {"cluster.seeds", R"(["node-b:7000","node-c:7000"])"},
  {"log.level", "\"debug\""},
  {"log.format", "\"json\""},
};

/// The documented mapping, written independently of the implementation.
std::string env_name(const std::string& key) {
  std::string name = "TROUPE_";
  for (auto c : key) {
    name += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(c));
  }
  return name;
}

std::string render(const settings& s, const std::string& key) {
  const auto* descriptor = find_key(key);
  return descriptor == nullptr ? "(no such key)" : descriptor->codec.render(s);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool is_one_troupe_line(const std::string& message) {
  return message.rfind("troupe: ", 0) == 0 && message.find('\n') == std::string::npos
         && message.find('\r') == std::string::npos;
}

settings loaded(const args& arguments, const environment& env = {}) {
  auto result = load(arguments, env);
  if (auto* err = std::get_if<config_error>(&result)) {
    CAF_FAIL("unexpected config error: " << err->message);
  }
  return std::get<settings>(std::move(result));
}

config_error refused(const args& arguments, const environment& env = {}) {
  auto result = load(arguments, env);
  if (!std::holds_alternative<config_error>(result)) {
    CAF_FAIL("expected a config error");
  }
  return std::get<config_error>(std::move(result));
}

/// `--key=raw` is refused with a one-line message naming the key and the value.
void check_invalid(const std::string& key, const std::string& raw) {
  CAF_MESSAGE("--" << key << "=" << raw);
  auto result = load({"--" + key + "=" + raw}, {});
  const auto* err = std::get_if<config_error>(&result);
  CAF_CHECK(err != nullptr);
  if (err == nullptr) {
    return;
  }
  CAF_CHECK_EQUAL(err->key, key);
  CAF_CHECK(is_one_troupe_line(err->message));
  CAF_CHECK(contains(err->message, "troupe: invalid value for " + key + ": "));
  CAF_CHECK(contains(err->message, quote(raw)));
}

void check_valid(const std::string& key, const std::string& raw) {
  CAF_MESSAGE("--" << key << "=" << raw);
  auto result = load({"--" + key + "=" + raw}, {});
  const auto* err = std::get_if<config_error>(&result);
  CAF_CHECK_EQUAL(err == nullptr ? std::string{} : err->message, std::string{});
}

struct fixture {
  fixture() {
    char name[] = "/tmp/troupe-config-test-XXXXXX";
    const auto* made = mkdtemp(name);
    CAF_REQUIRE(made != nullptr);
    dir = made;
  }

  ~fixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  std::string write(const std::string& text, const std::string& name = "troupe.ini") {
    auto path = dir + "/" + name;
    std::ofstream out{path, std::ios::binary};
    out << text;
    return path;
  }

  std::string dir;
};

} // namespace

CAF_TEST(the defaults equal the API.md configuration table) {
  const auto s = loaded({});
  CAF_CHECK_EQUAL(s.http_address, "127.0.0.1");
  CAF_CHECK_EQUAL(s.http_port, 8080u);
  CAF_CHECK_EQUAL(s.http_max_body_bytes, 1048576u);
  CAF_CHECK_EQUAL(s.http_base_domain, "localhost");
  CAF_CHECK_EQUAL(s.http_tls_cert, "");
  CAF_CHECK_EQUAL(s.http_tls_key, "");
  CAF_CHECK_EQUAL(s.database_url, "");
  CAF_CHECK_EQUAL(s.database_embedded_dir, "./var/pg");
  CAF_CHECK_EQUAL(s.database_pool_size, 8u);
  CAF_CHECK_EQUAL(s.tenants_idle_timeout_s, 300u);
  CAF_CHECK_EQUAL(s.admin_token, "");
  CAF_CHECK_EQUAL(s.auth_issuer, "troupe");
  CAF_CHECK_EQUAL(s.auth_access_ttl_s, 900u);
  CAF_CHECK_EQUAL(s.auth_refresh_ttl_s, 2592000u);
  CAF_CHECK_EQUAL(s.auth_max_failures, 10u);
  CAF_CHECK_EQUAL(s.auth_key_rotation_days, 30u);
  CAF_CHECK_EQUAL(s.auth_key_encryption_key, "");
  CAF_CHECK_EQUAL(render(s, "limits.principal"), "[600,60]");
  CAF_CHECK_EQUAL(render(s, "limits.tenant"), "[6000,60]");
  CAF_CHECK_EQUAL(render(s, "limits.anonymous"), "[30,60]");
  CAF_CHECK_EQUAL(render(s, "limits.inbound"), "[6000,60]");
  CAF_CHECK_EQUAL(s.quota_requests_per_month, 0u);
  CAF_CHECK_EQUAL(s.idempotency_ttl_s, 86400u);
  CAF_CHECK_EQUAL(s.audit_retention_days, 0u);
  CAF_CHECK_EQUAL(render(s, "webhooks.retry-schedule"), "[5,300,1800,7200,18000,36000,36000]");
  CAF_CHECK_EQUAL(s.webhooks_timeout_ms, 15000u);
  CAF_CHECK_EQUAL(s.webhooks_disable_after, 10u);
  CAF_CHECK_EQUAL(s.webhooks_allow_private_targets, false);
  CAF_CHECK_EQUAL(s.jobs_retry_base_ms, 1000u);
  CAF_CHECK_EQUAL(s.jobs_retry_max_ms, 3600000u);
  CAF_CHECK_EQUAL(s.jobs_concurrency, 16u);
  CAF_CHECK_EQUAL(s.jobs_test_handlers, false);
  CAF_CHECK_EQUAL(s.cluster_port, 0u);
  CAF_CHECK(s.cluster_seeds.empty());
  CAF_CHECK_EQUAL(s.log_level, "info");
  CAF_CHECK_EQUAL(s.log_format, "text");
}

CAF_TEST(the HTTP limits beyond API.md have their documented defaults) {
  const auto s = loaded({});
  CAF_CHECK_EQUAL(s.http_max_header_bytes, 16384u);
  CAF_CHECK_EQUAL(s.http_read_timeout_ms, 10000u);
  CAF_CHECK_EQUAL(s.http_idle_timeout_ms, 60000u);
  CAF_CHECK_EQUAL(s.http_max_connections, 10000u);
  CAF_CHECK_EQUAL(s.http_shutdown_grace_ms, 10000u);
}

CAF_TEST(the argon2 costs beyond API.md default to the OWASP recommendation) {
  const auto s = loaded({});
  CAF_CHECK_EQUAL(s.auth_argon2_memory_kib, 19456u);
  CAF_CHECK_EQUAL(s.auth_argon2_iterations, 2u);
  CAF_CHECK_EQUAL(s.auth_argon2_parallelism, 1u);
}

CAF_TEST(http.threads defaults to the number of cores) {
  const auto cores = std::max(1u, std::min(std::thread::hardware_concurrency(), 256u));
  CAF_CHECK_EQUAL(loaded({}).http_threads, cores);
  CAF_CHECK_EQUAL(loaded({"--http.threads=2"}).http_threads, 2u);
}

CAF_TEST(the cluster node id defaults to the host name) {
  char host[256] = {};
  CAF_REQUIRE(gethostname(host, sizeof host - 1) == 0);
  CAF_CHECK_EQUAL(loaded({}).cluster_node_id, std::string{host});
  CAF_CHECK_EQUAL(loaded({"--cluster.node-id=n1"}).cluster_node_id, "n1");
}

CAF_TEST(known_keys lists every key once in table order) {
  const auto keys = known_keys();
  CAF_REQUIRE_EQUAL(keys.size(), samples.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    CAF_CHECK_EQUAL(keys[i], samples[i].first);
  }
}

CAF_TEST(the sample value of every key differs from its default) {
  const settings defaults;
  for (const auto& [key, sample] : samples) {
    CAF_CHECK_NOT_EQUAL(render(defaults, key), sample);
  }
}

CAF_TEST_FIXTURE_SCOPE(settings_file_tests, fixture)

CAF_TEST(an INI file can set every key) {
  std::string text;
  std::string group;
  for (const auto& [key, sample] : samples) {
    const auto dot = key.find('.');
    if (key.substr(0, dot) != group) {
      group = key.substr(0, dot);
      text += "\n[" + group + "]\n";
    }
    text += key.substr(dot + 1) + " = " + sample + "\n";
  }
  const auto s = loaded({"--config-file=" + write(text)});
  for (const auto& [key, sample] : samples) {
    CAF_CHECK_EQUAL(render(s, key), sample);
  }
}

CAF_TEST(the environment can set every key) {
  environment env;
  for (const auto& [key, sample] : samples) {
    env[env_name(key)] = sample;
  }
  const auto s = loaded({}, env);
  for (const auto& [key, sample] : samples) {
    CAF_CHECK_EQUAL(render(s, key), sample);
  }
}

CAF_TEST(the command line can set every key) {
  args arguments;
  for (const auto& [key, sample] : samples) {
    arguments.push_back("--" + key + "=");
    arguments.back() += sample;
  }
  const auto s = loaded(arguments);
  for (const auto& [key, sample] : samples) {
    CAF_CHECK_EQUAL(render(s, key), sample);
  }
}

CAF_TEST(the INI file overrides the defaults) {
  const auto path = write("[http]\nport=9000\n[log]\nlevel=debug\n");
  const auto s = loaded({"--config-file=" + path});
  CAF_CHECK_EQUAL(s.http_port, 9000u);
  CAF_CHECK_EQUAL(s.log_level, "debug");
  CAF_CHECK_EQUAL(s.http_address, "127.0.0.1");
}

CAF_TEST(the environment overrides the INI file) {
  const auto path = write("[http]\nport=9000\naddress=\"10.0.0.1\"\n");
  const auto s = loaded({"--config-file", path}, {{"TROUPE_HTTP_PORT", "9001"}});
  CAF_CHECK_EQUAL(s.http_port, 9001u);
  CAF_CHECK_EQUAL(s.http_address, "10.0.0.1");
}

CAF_TEST(the command line overrides the environment) {
  const auto path = write("[http]\nport=9000\n");
  const auto s = loaded({"--http.port=9002", "--config-file=" + path},
                        {{"TROUPE_HTTP_PORT", "9001"}, {"TROUPE_LOG_FORMAT", "json"}});
  CAF_CHECK_EQUAL(s.http_port, 9002u);
  CAF_CHECK_EQUAL(s.log_format, "json");
}

CAF_TEST(the last of several values for one key wins within a source) {
  const auto path = write("[http]\nport=1\n[log]\nlevel=warn\n[http]\nport=2\n");
  CAF_CHECK_EQUAL(loaded({"--config-file=" + path}).http_port, 2u);
  CAF_CHECK_EQUAL(loaded({"--http.port=3", "--http.port", "4"}).http_port, 4u);
}

CAF_TEST(quoted strings in the INI file unescape quotes and backslashes) {
  const auto path = write("[auth]\nissuer = \"a \\\"quoted\\\" \\\\ name # not a comment\"\n");
  CAF_CHECK_EQUAL(loaded({"--config-file=" + path}).auth_issuer,
                  "a \"quoted\" \\ name # not a comment");
}

CAF_TEST(comments and blank lines and CRLF line ends are skipped in the INI file) {
  const auto path = write("# a comment\r\n; another\r\n\r\n  [http]   # trailing\r\n"
                          "  port = 9005 ; the port\r\n"
                          "address = \"::1\" # quoted, then a comment\r\n"
                          "base-domain = example.test # bare, then a comment\r\n");
  const auto s = loaded({"--config-file=" + path});
  CAF_CHECK_EQUAL(s.http_port, 9005u);
  CAF_CHECK_EQUAL(s.http_address, "::1");
  CAF_CHECK_EQUAL(s.http_base_domain, "example.test");
}

CAF_TEST(a list in the INI file may span lines with blanks and comments) {
  const auto path = write("[cluster]\nseeds = [\n  \"a:7000\", # first\n  b:7001\n]\n"
                          "[limits]\nprincipal = [ 10 , 20 ]\n");
  const auto s = loaded({"--config-file=" + path});
  CAF_CHECK_EQUAL(s.cluster_seeds, (std::vector<std::string>{"a:7000", "b:7001"}));
  CAF_CHECK_EQUAL(s.limits_principal.requests, 10);
  CAF_CHECK_EQUAL(s.limits_principal.window_s, 20);
}

CAF_TEST(a key outside any section is refused) {
  const auto path = write("# header\nport=8080\n");
  const auto err = refused({"--config-file=" + path});
  CAF_CHECK_EQUAL(err.key, "port");
  CAF_CHECK(is_one_troupe_line(err.message));
  CAF_CHECK(contains(err.message, path + ":2"));
}

CAF_TEST(an unknown section in the INI file is refused) {
  const auto path = write("[htp]\nport=8080\n");
  const auto err = refused({"--config-file=" + path});
  CAF_CHECK_EQUAL(err.key, "htp");
  CAF_CHECK(is_one_troupe_line(err.message));
  CAF_CHECK(contains(err.message, path + ":1"));
}

CAF_TEST(an unknown key in the INI file is refused naming the file and line) {
  const auto path = write("[http]\nport=8080\nprot=8081\n");
  const auto err = refused({"--config-file=" + path});
  CAF_CHECK_EQUAL(err.key, "http.prot");
  CAF_CHECK_EQUAL(err.message,
                  "troupe: unknown configuration key \"http.prot\" (from " + path + ":3)");
}

CAF_TEST(a malformed line in the INI file is refused) {
  for (const auto* text : {"[http]\nport 8080\n", "[http\nport=1\n", "[http]\n=5\n",
                           "[http]\nport=1\n[log] level=info\n"}) {
    const auto err = refused({"--config-file=" + write(text)});
    CAF_CHECK_EQUAL(err.key, "--config-file");
    CAF_CHECK(is_one_troupe_line(err.message));
  }
}

CAF_TEST(an unterminated list in the INI file is refused) {
  const auto err = refused({"--config-file=" + write("[cluster]\nseeds = [\"a:1\",\n")});
  CAF_CHECK_EQUAL(err.key, "cluster.seeds");
  CAF_CHECK(is_one_troupe_line(err.message));
}

CAF_TEST(a bad value in the INI file names the key the file and the line) {
  const auto path = write("[http]\n\nport = abc\n");
  const auto err = refused({"--config-file=" + path});
  CAF_CHECK_EQUAL(err.key, "http.port");
  CAF_CHECK_EQUAL(err.message, "troupe: invalid value for http.port: \"abc\" (expected an "
                               "integer 0..65535) (from "
                                 + path + ":3)");
}

CAF_TEST(text after a quoted string in the INI file is refused) {
  const auto err = refused({"--config-file=" + write("[auth]\nissuer = \"a\" b\n")});
  CAF_CHECK_EQUAL(err.key, "auth.issuer");
}

CAF_TEST(a missing config file is refused) {
  const auto err = refused({"--config-file=" + dir + "/nope.ini"});
  CAF_CHECK_EQUAL(err.key, "--config-file");
  CAF_CHECK(is_one_troupe_line(err.message));
  CAF_CHECK(contains(err.message, "nope.ini"));
}

CAF_TEST(a directory as config file is refused) {
  const auto err = refused({"--config-file=" + dir});
  CAF_CHECK_EQUAL(err.key, "--config-file");
}

CAF_TEST(a retry base above the retry maximum is refused across sources) {
  const auto path = write("[jobs]\nretry-base-ms = 5000\n");
  const auto err = refused({"--config-file=" + path, "--jobs.retry-max-ms=4000"});
  CAF_CHECK_EQUAL(err.key, "jobs.retry-base-ms");
  CAF_CHECK(is_one_troupe_line(err.message));
  CAF_CHECK(contains(err.message, "\"5000\""));
  CAF_CHECK_EQUAL(
    loaded({"--jobs.retry-base-ms=4000", "--jobs.retry-max-ms=4000"}).jobs_retry_base_ms, 4000u);
}

CAF_TEST(the example file of the configuration guide loads) {
  // Keep in step with docs/configuration.md, section "The INI file".
  const auto path = write(R"(# troupe.ini
[http]
address = "0.0.0.0"
port = 8443
tls-cert = "/etc/troupe/cert.pem"
tls-key = "/etc/troupe/key.pem"
base-domain = api.example.com  # a bare string ends before a comment

[database]
url = "postgresql://troupe@db.internal/troupe" ; the connection string
pool-size = 16

[limits]
principal = [1200, 60]
anonymous = [10, 60]

[webhooks]
retry-schedule = [10, 60, 600]

[cluster]
port = 7000
seeds = [
  "node-1.internal:7000", # a list may span lines
  "node-2.internal:7000"
]

[log]
level = warn
format = json
)");
  const auto s = loaded({"--config-file=" + path});
  CAF_CHECK_EQUAL(s.http_address, "0.0.0.0");
  CAF_CHECK_EQUAL(s.http_port, 8443u);
  CAF_CHECK_EQUAL(s.http_base_domain, "api.example.com");
  CAF_CHECK_EQUAL(s.database_url, "postgresql://troupe@db.internal/troupe");
  CAF_CHECK_EQUAL(s.database_pool_size, 16u);
  CAF_CHECK_EQUAL(render(s, "limits.principal"), "[1200,60]");
  CAF_CHECK_EQUAL(render(s, "limits.anonymous"), "[10,60]");
  CAF_CHECK_EQUAL(render(s, "webhooks.retry-schedule"), "[10,60,600]");
  CAF_CHECK_EQUAL(render(s, "cluster.seeds"), R"(["node-1.internal:7000","node-2.internal:7000"])");
  CAF_CHECK_EQUAL(s.log_level, "warn");
  CAF_CHECK_EQUAL(s.log_format, "json");
}

CAF_TEST(a byte order mark at the start of the INI file is skipped) {
  const auto path = write("\xEF\xBB\xBF[http]\nport=9006\n");
  CAF_CHECK_EQUAL(loaded({"--config-file=" + path}).http_port, 9006u);
}

CAF_TEST(a second config file option is refused) {
  const auto path = write("[http]\nport=9000\n");
  const auto err = refused({"--config-file=" + path, "--config-file", path});
  CAF_CHECK_EQUAL(err.key, "--config-file");
  CAF_CHECK(is_one_troupe_line(err.message));
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST(a config file option without a path is refused) {
  CAF_CHECK_EQUAL(refused({"--config-file"}).key, "--config-file");
  CAF_CHECK_EQUAL(refused({"--config-file="}).key, "--config-file");
  CAF_CHECK_EQUAL(refused({"--config-file", "--http.port=1"}).key, "--config-file");
}

CAF_TEST(an unknown key on the command line is refused) {
  const auto err = refused({"--htp.port=8080"});
  CAF_CHECK_EQUAL(err.key, "htp.port");
  CAF_CHECK_EQUAL(err.message, "troupe: unknown configuration key \"htp.port\" (from the command "
                               "line)");
}

CAF_TEST(positional and short arguments are refused) {
  for (const auto* arg : {"serve", "-x", "--", "http.port=1"}) {
    const auto err = refused({"--http.port=1", arg});
    CAF_CHECK_EQUAL(err.key, arg);
    CAF_CHECK(is_one_troupe_line(err.message));
    CAF_CHECK(contains(err.message, quote(arg)));
  }
}

CAF_TEST(a key without a value on the command line is refused) {
  CAF_CHECK_EQUAL(refused({"--http.port"}).key, "http.port");
  CAF_CHECK_EQUAL(refused({"--webhooks.allow-private-targets", "--http.port=1"}).key,
                  "webhooks.allow-private-targets");
}

CAF_TEST(an environment typo in a known group is refused) {
  const auto err = refused({}, {{"TROUPE_HTTP_PROT", "8080"}});
  CAF_CHECK_EQUAL(err.key, "http.prot");
  CAF_CHECK_EQUAL(err.message, "troupe: unknown configuration key \"http.prot\" (from "
                               "environment TROUPE_HTTP_PROT)");
}

CAF_TEST(unrelated environment variables are ignored) {
  const auto s = loaded({}, {{"TROUPE_BIN", "/x/troupe"},
                             {"TROUPE_TEST_PG", "1"},
                             {"TROUPE_HTTPX_PORT", "1"},
                             {"PATH", "/bin"},
                             {"troupe_http_port", "1"}});
  CAF_CHECK_EQUAL(s.http_port, 8080u);
}

CAF_TEST(environment values use the command line syntax) {
  const auto s = loaded({}, {{"TROUPE_LIMITS_PRINCIPAL", "[1, 2]"},
                             {"TROUPE_DATABASE_URL", "host=db dbname=troupe"},
                             {"TROUPE_AUTH_ISSUER", "\"quoted\""}});
  CAF_CHECK_EQUAL(s.limits_principal.requests, 1);
  CAF_CHECK_EQUAL(s.limits_principal.window_s, 2);
  CAF_CHECK_EQUAL(s.database_url, "host=db dbname=troupe");
  CAF_CHECK_EQUAL(s.auth_issuer, "quoted");
}

CAF_TEST(a bad environment value names the variable) {
  const auto err = refused({}, {{"TROUPE_HTTP_MAX_BODY_BYTES", "-5"}});
  CAF_CHECK_EQUAL(err.key, "http.max-body-bytes");
  CAF_CHECK_EQUAL(err.message, "troupe: invalid value for http.max-body-bytes: \"-5\" (expected "
                               "an integer 1..18446744073709551615) (from environment "
                               "TROUPE_HTTP_MAX_BODY_BYTES)");
}

CAF_TEST(a port that is not a number is refused with one line) {
  const auto err = refused({"--http.port=abc"});
  CAF_CHECK_EQUAL(err.key, "http.port");
  CAF_CHECK_EQUAL(err.message,
                  "troupe: invalid value for http.port: \"abc\" (expected an integer 0..65535)");
}

CAF_TEST(ports accept 0 to 65535 only) {
  for (const auto* key : {"http.port", "cluster.port"}) {
    for (const auto* raw :
         {"-5", "70000", "65536", "", " 80", "80 ", "0x10", "+5", "8.0", "\"80\""}) {
      check_invalid(key, raw);
    }
    check_valid(key, "0");
    check_valid(key, "65535");
  }
}

CAF_TEST(integers that overflow their field are refused) {
  check_invalid("http.max-body-bytes", "18446744073709551616");
  check_invalid("quota.requests-per-month", "99999999999999999999999");
  check_invalid("http.read-timeout-ms", "4294967296");
  check_valid("http.read-timeout-ms", "4294967295");
  check_valid("quota.requests-per-month", "18446744073709551615");
}

CAF_TEST(integer keys enforce their ranges) {
  const std::vector<std::pair<std::string, std::string>> bad = {
    {"http.threads", "0"},
    {"http.threads", "257"},
    {"http.max-body-bytes", "0"},
    {"http.max-header-bytes", "1023"},
    {"http.max-header-bytes", "1048577"},
    {"database.pool-size", "0"},
    {"database.pool-size", "1025"},
    {"http.max-connections", "0"},
    {"http.max-connections", "1000001"},
    {"jobs.concurrency", "0"},
    {"jobs.concurrency", "10001"},
    {"auth.max-failures", "0"},
    {"auth.key-rotation-days", "0"},
    {"webhooks.disable-after", "0"},
    {"auth.argon2-memory-kib", "7"},
    {"auth.argon2-memory-kib", "4194305"},
    {"auth.argon2-iterations", "0"},
    {"auth.argon2-iterations", "101"},
    {"auth.argon2-parallelism", "0"},
    {"auth.argon2-parallelism", "65"},
  };
  for (const auto& [key, raw] : bad) {
    check_invalid(key, raw);
  }
  const std::vector<std::pair<std::string, std::string>> good = {
    {"http.threads", "1"},
    {"http.threads", "256"},
    {"http.max-header-bytes", "1024"},
    {"http.max-header-bytes", "1048576"},
    {"database.pool-size", "1024"},
    {"http.max-connections", "1000000"},
    {"jobs.concurrency", "10000"},
    {"audit.retention-days", "0"},
    {"quota.requests-per-month", "0"},
    {"auth.argon2-memory-kib", "8"},
    {"auth.argon2-memory-kib", "4194304"},
    {"auth.argon2-iterations", "1"},
    {"auth.argon2-iterations", "100"},
    {"auth.argon2-parallelism", "1"},
    {"auth.argon2-parallelism", "64"},
  };
  for (const auto& [key, raw] : good) {
    check_valid(key, raw);
  }
}

CAF_TEST(every timeout must be at least 1) {
  for (const auto& key : known_keys()) {
    const bool is_timeout = key.size() > 3
                            && (key.compare(key.size() - 3, 3, "-ms") == 0
                                || key.compare(key.size() - 2, 2, "-s") == 0);
    if (is_timeout) {
      check_invalid(key, "0");
      check_invalid(key, "-1");
    }
  }
}

CAF_TEST(booleans accept only true and false) {
  for (const auto* key : {"webhooks.allow-private-targets", "jobs.test-handlers"}) {
    for (const auto* raw : {"yes", "1", "TRUE", "True", "", "\"true\"", "[true]"}) {
      check_invalid(key, raw);
    }
  }
  CAF_CHECK(loaded({"--jobs.test-handlers=true"}).jobs_test_handlers);
  CAF_CHECK(!loaded({"--jobs.test-handlers=false"}).jobs_test_handlers);
}

CAF_TEST(rate windows must be two positive integers in a list) {
  for (const auto& key :
       {"limits.principal", "limits.tenant", "limits.anonymous", "limits.inbound"}) {
    for (const auto* raw : {"600", "[600]", "[a,b]", "[0,60]", "[600,0]", "600,60", "[600,60,1]",
                            "[-1,60]", "[\"600\",60]", "[600,60", "[]", "[600,,60]"}) {
      check_invalid(key, raw);
    }
    const auto err = refused({std::string{"--"} + key + "=600"});
    CAF_CHECK(
      contains(err.message, "(expected a list [requests,seconds] of two positive integers)"));
  }
}

CAF_TEST(the retry schedule must be a short list of delays) {
  std::string longest = "[0";
  for (int i = 1; i < 32; ++i) {
    longest += ",1";
  }
  const auto too_long = longest + ",1]";
  longest += "]";
  for (const auto& raw : {std::string{"5"}, std::string{"5,10"}, std::string{"[a]"},
                          std::string{"[-1]"}, std::string{"[31536001]"}, too_long}) {
    check_invalid("webhooks.retry-schedule", raw);
  }
  CAF_CHECK_EQUAL(loaded({"--webhooks.retry-schedule=" + longest}).webhooks_retry_schedule.size(),
                  32u);
  CAF_CHECK(loaded({"--webhooks.retry-schedule=[]"}).webhooks_retry_schedule.empty());
  check_valid("webhooks.retry-schedule", "[0, 31536000]");
}

CAF_TEST(cluster seeds must be a list of host and port) {
  for (const auto* raw : {"a:7000", "[a]", "[a:0]", "[a:70000]", "[:7000]", "[a:]", "[a:x]",
                          "[::1:7000]", "[a:1 b:2]"}) {
    check_invalid("cluster.seeds", raw);
  }
  const auto s = loaded({"--cluster.seeds=[a:1, \"[::1]:7000\", b.example:65535]"});
  CAF_CHECK_EQUAL(s.cluster_seeds,
                  (std::vector<std::string>{"a:1", "[::1]:7000", "b.example:65535"}));
  CAF_CHECK(loaded({"--cluster.seeds=[]"}).cluster_seeds.empty());
}

CAF_TEST(log level and format accept only their names) {
  for (const auto* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    CAF_CHECK_EQUAL(loaded({std::string{"--log.level="} + level}).log_level, level);
  }
  check_invalid("log.level", "warning");
  check_invalid("log.level", "INFO");
  check_invalid("log.format", "xml");
  CAF_CHECK_EQUAL(loaded({"--log.format=json"}).log_format, "json");
}

CAF_TEST(string keys accept any text but address and issuer must not be empty) {
  check_invalid("http.address", "");
  check_invalid("http.address", "\"\"");
  check_invalid("auth.issuer", "");
  check_invalid("auth.issuer", "[a]");
  const auto s = loaded({"--database.url=", "--admin.token=a=b;c # d",
                         "--http.base-domain"
                         "=\"x\\\\y\""});
  CAF_CHECK_EQUAL(s.database_url, "");
  CAF_CHECK_EQUAL(s.admin_token, "a=b;c # d");
  CAF_CHECK_EQUAL(s.http_base_domain, "x\\y");
}

CAF_TEST(malformed quoted strings are refused) {
  check_invalid("auth.issuer", "\"open");
  check_invalid("auth.issuer", "\"a\"b");
  check_invalid("auth.issuer", R"("bad \n escape")");
}

CAF_TEST(the TLS certificate and key must be set together) {
  const auto err = refused({"--http.tls-cert=/c.pem"});
  CAF_CHECK_EQUAL(err.key, "http.tls-key");
  CAF_CHECK(is_one_troupe_line(err.message));
  CAF_CHECK_EQUAL(refused({"--http.tls-key=/k.pem"}).key, "http.tls-key");
  const auto s = loaded({"--http.tls-cert=/c.pem", "--http.tls-key", "/k.pem"});
  CAF_CHECK_EQUAL(s.http_tls_cert, "/c.pem");
  CAF_CHECK_EQUAL(s.http_tls_key, "/k.pem");
}

CAF_TEST(error messages stay on one line even for values with line breaks) {
  const auto err = refused({"--http.port=80\n81"});
  CAF_CHECK(is_one_troupe_line(err.message));
  CAF_CHECK(contains(err.message, "\"80\\n81\""));
  CAF_CHECK(is_one_troupe_line(refused({"--auth.issuer="}).message));
  CAF_CHECK(is_one_troupe_line(refused({}, {{"TROUPE_LOG_LEVEL", "a\r\nb"}}).message));
}

CAF_TEST(help_text lists the usage the commands and every key) {
  const auto text = help_text();
  CAF_CHECK(contains(text, "usage: troupe <command> [--config-file=PATH] [--group.key=value ...]"));
  for (const auto* command : {"serve", "migrate", "version", "--help"}) {
    CAF_CHECK(contains(text, command));
  }
  for (const auto& key : known_keys()) {
    CAF_CHECK(contains(text, "  " + key + " "));
  }
  CAF_CHECK(contains(text, "TROUPE_<GROUP>_<KEY>"));
}

CAF_TEST(help_text shows the defaults as API.md does) {
  const auto text = help_text();
  for (const auto* shown :
       {"[600,60]", "[6000,60]", "[30,60]", "\"./var/pg\"", "\"127.0.0.1\"", "8080",
        "(number of cores)", "(host name)", "[5,300,1800,7200,18000,36000,36000]", "3600000",
        "./var/admin-token", "embedded PostgreSQL", "\"info\"", "\"text\""}) {
    CAF_CHECK(contains(text, shown));
  }
}

CAF_TEST(process_environment reads the environment of the process) {
  CAF_REQUIRE(setenv("TROUPE_CONFIG_UNIT_PROBE", "a=b", 1) == 0);
  const auto env = process_environment();
  unsetenv("TROUPE_CONFIG_UNIT_PROBE");
  const auto probe = env.find("TROUPE_CONFIG_UNIT_PROBE");
  CAF_REQUIRE(probe != env.end());
  CAF_CHECK_EQUAL(probe->second, "a=b");
}

CAF_TEST(argon2 memory below eight KiB per lane is refused) {
  auto result = load({"--auth.argon2-memory-kib=64", "--auth.argon2-parallelism=16"}, {});
  auto* err = std::get_if<config_error>(&result);
  CAF_REQUIRE(err != nullptr);
  CAF_CHECK_EQUAL(err->key, "auth.argon2-memory-kib");
  CAF_CHECK(std::holds_alternative<settings>(
    load({"--auth.argon2-memory-kib=128", "--auth.argon2-parallelism=16"}, {})));
}

#include "config/settings.hpp"

#include "config/ini.hpp"
#include "config/key_table.hpp"
#include "config/value_syntax.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>
#include <unistd.h>
#include <utility>

extern char** environ; // POSIX: the process environment

namespace troupe::config {

namespace {

constexpr std::string_view config_file_option = "--config-file";
constexpr std::uint32_t max_http_threads = 256;

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Where a value came from, for messages: "the command line", "environment TROUPE_HTTP_PORT",
// "troupe.ini:3".
struct source {
  std::string where;
  bool command_line = false;
};

config_error unknown_key(const std::string& key, const source& from) {
  return {key, "troupe: unknown configuration key " + quote(key) + " (from " + from.where + ")"};
}

config_error invalid_value(const std::string& key, std::string_view raw, std::string_view expected,
                           const source& from) {
  auto message = "troupe: invalid value for " + key + ": " + quote(raw) + " (expected "
                 + std::string{expected} + ")";
  if (!from.command_line) {
    message += " (from " + from.where + ")";
  }
  return {key, std::move(message)};
}

std::optional<config_error> assign(settings& result, const key_descriptor& key,
                                   std::string_view raw, const source& from) {
  const auto parsed = parse_value(raw);
  if (!parsed || !key.codec.assign(result, *parsed)) {
    return invalid_value(key.name, raw, key.codec.expected, from);
  }
  return std::nullopt;
}

// A `--group.key` argument waiting for the file and the environment to be applied first.
struct argument {
  const key_descriptor* key = nullptr;
  std::string raw;
};

struct command_line {
  std::optional<std::string> config_file;
  std::vector<argument> arguments;
};

std::variant<command_line, config_error> parse_command_line(const std::vector<std::string>& args) {
  const source from{"the command line", true};
  command_line result;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    const bool has_next = i + 1 < args.size() && !starts_with(args[i + 1], "--");
    if (arg == config_file_option || starts_with(arg, "--config-file=")) {
      if (arg == config_file_option && !has_next) {
        return config_error{std::string{config_file_option},
                            "troupe: --config-file needs a file name (--config-file=PATH)"};
      }
      auto path = arg == config_file_option
                    ? args[++i]
                    : std::string{arg.substr(config_file_option.size() + 1)};
      if (path.empty() || result.config_file) {
        return config_error{std::string{config_file_option},
                            path.empty() ? "troupe: --config-file needs a file name"
                                         : "troupe: --config-file given more than once"};
      }
      result.config_file = std::move(path);
      continue;
    }
    if (!starts_with(arg, "--") || arg.size() == 2) {
      return config_error{std::string{arg}, "troupe: unexpected argument " + quote(arg)
                                              + " (expected --group.key=value)"};
    }
    const auto body = arg.substr(2);
    const auto equals = body.find('=');
    const auto name = std::string{body.substr(0, equals)};
    const auto* key = find_key(name);
    if (key == nullptr) {
      return unknown_key(name, from);
    }
    if (equals != std::string_view::npos) {
      result.arguments.push_back({key, std::string{body.substr(equals + 1)}});
    } else if (has_next) {
      result.arguments.push_back({key, args[++i]});
    } else {
      auto message = "troupe: missing value for --" + name;
      message += " (expected --" + name + "=value)";
      return config_error{name, std::move(message)};
    }
  }
  return result;
}

std::optional<config_error> apply_file(settings& result, const std::string& path) {
  const auto unreadable = [&](const std::string& reason) {
    return config_error{std::string{config_file_option}, "troupe: cannot read configuration file "
                                                           + quote(path) + " (" + reason + ")"};
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return unreadable("it is a directory");
  }
  errno = 0;
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    return unreadable(errno != 0 ? std::strerror(errno) : "cannot open it");
  }
  const std::string text{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  if (in.bad()) {
    return unreadable("read error");
  }
  auto entries = parse_ini(text, path);
  if (auto* err = std::get_if<config_error>(&entries)) {
    return std::move(*err);
  }
  for (const auto& entry : std::get<std::vector<ini_entry>>(entries)) {
    const source from{path + ":" + std::to_string(entry.line)};
    if (auto err = assign(result, *find_key(entry.key), entry.raw, from)) {
      return err;
    }
  }
  return std::nullopt;
}

// `TROUPE_HTTP_PROT` → `http.prot`: a best guess at the key the variable meant to set.
std::string key_from_environment_name(std::string_view group, std::string_view rest) {
  std::string key{group};
  key += '.';
  for (const auto c : rest) {
    key += c == '_' ? '-' : static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return key;
}

std::optional<config_error> apply_environment(settings& result, const environment& env) {
  for (const auto& variable : env) {
    const auto& name = variable.first; // not a structured binding: the lambda below captures it
    for (const auto& group : key_groups()) {
      const auto prefix = environment_name(group) + "_";
      if (!starts_with(name, prefix)) {
        continue;
      }
      const source from{"environment " + name};
      const auto& table = key_table();
      const auto key = std::find_if(table.begin(), table.end(), [&](const key_descriptor& k) {
        return environment_name(k.name) == name;
      });
      if (key == table.end()) {
        return unknown_key(key_from_environment_name(group, name.substr(prefix.size())), from);
      }
      if (auto err = assign(result, *key, variable.second, from)) {
        return err;
      }
      break;
    }
  }
  return std::nullopt;
}

std::string host_name() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof buffer - 1) != 0 || buffer[0] == '\0') {
    return "localhost";
  }
  return buffer;
}

void resolve_defaults(settings& result) {
  if (result.http_threads == 0) {
    result.http_threads = std::clamp(std::thread::hardware_concurrency(), 1u, max_http_threads);
  }
  if (result.cluster_node_id.empty()) {
    result.cluster_node_id = host_name();
  }
}

// Rules between keys, checked once every source has been applied.
std::optional<config_error> check_consistency(const settings& result) {
  const source anywhere{"", true}; // the values may come from different sources
  if (result.http_tls_cert.empty() != result.http_tls_key.empty()) {
    return invalid_value("http.tls-key", result.http_tls_key,
                         "http.tls-cert and http.tls-key both set or both empty", anywhere);
  }
  if (result.jobs_retry_base_ms > result.jobs_retry_max_ms) {
    return invalid_value("jobs.retry-base-ms", std::to_string(result.jobs_retry_base_ms),
                         "at most jobs.retry-max-ms = " + std::to_string(result.jobs_retry_max_ms),
                         anywhere);
  }
  // argon2 needs at least 8 KiB of memory per lane; below that every hash would fail.
  if (result.auth_argon2_memory_kib < 8 * result.auth_argon2_parallelism) {
    return invalid_value("auth.argon2-memory-kib", std::to_string(result.auth_argon2_memory_kib),
                         "at least 8 × auth.argon2-parallelism = "
                           + std::to_string(8 * result.auth_argon2_parallelism),
                         anywhere);
  }
  return std::nullopt;
}

} // namespace

std::variant<settings, config_error> load(const std::vector<std::string>& args,
                                          const environment& env) {
  auto cli = parse_command_line(args);
  if (auto* err = std::get_if<config_error>(&cli)) {
    return std::move(*err);
  }
  const auto& parsed = std::get<command_line>(cli);
  settings result;
  if (parsed.config_file) {
    if (auto err = apply_file(result, *parsed.config_file)) {
      return std::move(*err);
    }
  }
  if (auto err = apply_environment(result, env)) {
    return std::move(*err);
  }
  const source from{"the command line", true};
  for (const auto& arg : parsed.arguments) {
    if (auto err = assign(result, *arg.key, arg.raw, from)) {
      return std::move(*err);
    }
  }
  resolve_defaults(result);
  if (auto err = check_consistency(result)) {
    return std::move(*err);
  }
  return result;
}

environment process_environment() {
  environment result;
  for (auto** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text{*entry};
    const auto equals = text.find('=');
    if (equals == std::string_view::npos) {
      continue;
    }
    // emplace keeps the first of duplicate names, as getenv() does.
    result.emplace(std::string{text.substr(0, equals)}, std::string{text.substr(equals + 1)});
  }
  return result;
}

std::string help_text() {
  constexpr std::size_t key_column = 34;
  std::string text = "usage: troupe <command> [--config-file=PATH] [--group.key=value ...]\n"
                     "\n"
                     "commands:\n"
                     "  serve           run the server (applies pending migrations first)\n"
                     "  migrate         apply database migrations and exit\n"
                     "  version         print the version\n"
                     "  help, --help    this text\n"
                     "\n"
                     "configuration keys (default, then meaning); in the INI file as\n"
                     "[group] key=value, on the command line as --group.key=value:\n";
  for (const auto& key : key_table()) {
    text += "  " + key.name;
    text
      += std::string(key_column > key.name.size() + 2 ? key_column - key.name.size() - 2 : 1, ' ');
    text += key.default_text + "\n      " + key.description + "\n";
  }
  text += "\n"
          "Every key can also be set by the environment variable TROUPE_<GROUP>_<KEY> (upper\n"
          "case, '.' and '-' become '_', e.g. TROUPE_HTTP_MAX_BODY_BYTES=2097152). Later sources\n"
          "win: defaults, then the --config-file INI file, then the environment, then the\n"
          "command line. Lists are written [a,b,c]. Any unknown key or invalid value is an\n"
          "error.\n";
  return text;
}

std::vector<std::string> known_keys() {
  std::vector<std::string> names;
  for (const auto& key : key_table()) {
    names.push_back(key.name);
  }
  return names;
}

} // namespace troupe::config

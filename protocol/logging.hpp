#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace troupe::protocol {

/// How log lines look: `text` (`<time> <level> <logger> event k=v ...`) or `json` (one JSON
/// object per line with `ts`, `level`, `logger`, `event` and the fields).
enum class log_format { text, json };

/// Builds the message part of one log line: an event phrase plus key/value fields, rendered
/// for `format`. Values are escaped; secrets and bodies never go in here (STYLE.md 8).
class log_line {
public:
  log_line(log_format format, std::string_view event);

  log_line& add(std::string_view key, std::string_view value);
  log_line& add(std::string_view key, const std::string& value) {
    return add(key, std::string_view{value});
  }
  log_line& add(std::string_view key, const char* value) {
    return add(key, std::string_view{value});
  }
  log_line& add(std::string_view key, std::int64_t value);
  log_line& add(std::string_view key, int value) {
    return add(key, static_cast<std::int64_t>(value));
  }
  log_line& add(std::string_view key, std::uint64_t value);
  log_line& add(std::string_view key, double value);

  const std::string& str() const {
    return out_;
  }

private:
  log_format format_;
  std::string out_;
};

/// A log line for `event` in the process's format: `log->info(event("stopped").str())`.
log_line event(std::string_view name);

/// Configures spdlog once for the process: asynchronous, to stdout, UTC timestamps,
/// `level` ("info", ...) and `format`. Call before `make_logger`.
void setup_logging(log_format format, std::string_view level);

/// The process-wide format chosen by `setup_logging` (text before it is called).
log_format current_log_format();

/// A named logger sharing the process's sink and level (one per folder: "http", ...).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name);

/// Writes `text` (whole lines) to standard output. Every writer of stdout goes through here:
/// one process-wide lock keeps blocks of lines from different writers from interleaving.
/// A vanished stdout drops the text rather than stalling the caller.
void write_stdout(std::string_view text);

/// Flushes and stops the logging thread; call last in main.
void shutdown_logging();

} // namespace troupe::protocol

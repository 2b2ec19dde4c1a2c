#include "protocol/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <unistd.h>

namespace troupe::protocol {

namespace {

std::atomic<log_format> process_format{log_format::text};

// Standard output in blocks. spdlog's stdout sink flushes after every line: one write(2) per
// request halved the server's throughput (docs/performance.md). This sink writes when 64 KiB
// have gathered, when 100 ms have passed since the last write, for every warning or worse,
// and on flush (spdlog's periodic flush covers an idle server). It runs on the logger's
// single background thread, so the mutex is uncontended.
class buffered_stdout_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  ~buffered_stdout_sink() override {
    write_out(std::chrono::steady_clock::now()); // nothing logged is left in the buffer
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buffer_.append(formatted.data(), formatted.size());
    const auto now = std::chrono::steady_clock::now();
    if (buffer_.size() >= high_water || msg.level >= spdlog::level::warn
        || now - last_write_ >= max_delay) {
      write_out(now);
    }
  }

  void flush_() override {
    write_out(std::chrono::steady_clock::now());
  }

private:
  static constexpr std::size_t high_water = std::size_t{64} * 1024;
  static constexpr std::chrono::milliseconds max_delay{100};

  void write_out(std::chrono::steady_clock::time_point now) {
    write_stdout(buffer_);
    buffer_.clear();
    last_write_ = now;
  }

  std::string buffer_;
  std::chrono::steady_clock::time_point last_write_{};
};

bool needs_quotes(std::string_view value) {
  if (value.empty()) {
    return true;
  }
  for (const char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        out.push_back(c);
      }
    }
  }
}

} // namespace

void write_stdout(std::string_view text) {
  static std::mutex stdout_mutex;
  std::lock_guard<std::mutex> guard{stdout_mutex};
  const char* data = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const auto n = ::write(STDOUT_FILENO, data, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return; // stdout is gone: drop the lines rather than stall the server
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

log_line::log_line(log_format format, std::string_view event) : format_(format) {
  out_.reserve(256);
  if (format_ == log_format::json) {
    out_ += R"("event":")";
    append_escaped(out_, event);
    out_ += '"';
  } else {
    out_ += event;
  }
}

log_line& log_line::add(std::string_view key, std::string_view value) {
  if (format_ == log_format::json) {
    out_ += ",\"";
    out_ += key;
    out_ += "\":\"";
    append_escaped(out_, value);
    out_ += '"';
  } else {
    out_ += ' ';
    out_ += key;
    out_ += '=';
    if (needs_quotes(value)) {
      out_ += '"';
      append_escaped(out_, value);
      out_ += '"';
    } else {
      out_ += value;
    }
  }
  return *this;
}

log_line& log_line::add(std::string_view key, std::int64_t value) {
  out_ += format_ == log_format::json ? ",\"" : " ";
  out_ += key;
  out_ += format_ == log_format::json ? "\":" : "=";
  out_ += std::to_string(value);
  return *this;
}

log_line& log_line::add(std::string_view key, std::uint64_t value) {
  out_ += format_ == log_format::json ? ",\"" : " ";
  out_ += key;
  out_ += format_ == log_format::json ? "\":" : "=";
  out_ += std::to_string(value);
  return *this;
}

log_line& log_line::add(std::string_view key, double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", value);
  out_ += format_ == log_format::json ? ",\"" : " ";
  out_ += key;
  out_ += format_ == log_format::json ? "\":" : "=";
  out_ += buf;
  return *this;
}

void setup_logging(log_format format, std::string_view level) {
  process_format = format;
  spdlog::init_thread_pool(16384, 1);
  auto sink = std::make_shared<buffered_stdout_sink>();
  const std::string pattern = format == log_format::json
                                ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n",%v})"
                                : "%Y-%m-%dT%H:%M:%S.%eZ %l %n %v";
  sink->set_formatter(
    std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc));
  auto root = std::make_shared<spdlog::async_logger>("troupe", sink, spdlog::thread_pool(),
                                                     spdlog::async_overflow_policy::block);
  spdlog::set_default_logger(root);
  spdlog::set_level(spdlog::level::from_str(std::string{level}));
  spdlog::flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds{1});
}

log_line event(std::string_view name) {
  return log_line{process_format.load(), name};
}

log_format current_log_format() {
  return process_format;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name) {
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  auto logger = spdlog::default_logger()->clone(name);
  spdlog::register_logger(logger);
  return logger;
}

void shutdown_logging() {
  // An asynchronous flush is queued behind every line already logged; shutdown() then waits
  // for the logging thread to finish the queue.
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& logger) { logger->flush(); });
  spdlog::shutdown();
}

} // namespace troupe::protocol

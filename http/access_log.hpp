#pragma once

#include "protocol/logging.hpp"

#include <cstddef>
#include <ctime>
#include <string>
#include <vector>

namespace troupe::http {

/// The one-line-per-request log, written in blocks per io thread.
///
/// Each io thread appends to its own buffer (no lock, no thread wake-up per request) and
/// writes it to stdout when 64 KiB have gathered or when its 100 ms flush timer fires. Lines
/// have the exact shape of the `http` logger's (`<ts> info http request ...`, or one JSON
/// object with `ts`, `level`, `logger` and the fields).
class access_log {
public:
  access_log(std::size_t threads, protocol::log_format format);

  /// Appends one line to io thread `index`'s buffer. Only that thread may call it.
  void append(std::size_t index, const protocol::log_line& fields);

  /// Writes io thread `index`'s buffer out. Only that thread may call it, or any thread once
  /// the io threads have stopped.
  void flush(std::size_t index);

private:
  struct alignas(64) slot {
    std::string buffer;
    std::time_t second = 0;  // the second `prefix` was made for
    std::string second_text; // "2026-11-22T05:00:59."
  };
  std::vector<slot> slots_;
  protocol::log_format format_;
};

} // namespace troupe::http

#include "http/access_log.hpp"

#include <chrono>
#include <cstdio>

namespace troupe::http {

namespace {

constexpr std::size_t high_water = std::size_t{64} * 1024;

} // namespace

access_log::access_log(std::size_t threads, protocol::log_format format)
    : slots_(threads), format_(format) {
  for (auto& s : slots_) {
    s.buffer.reserve(high_water + 1024);
  }
}

void access_log::append(std::size_t index, const protocol::log_line& fields) {
  auto& s = slots_.at(index);
  const auto now = std::chrono::system_clock::now();
  const auto since_epoch = now.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t second = seconds.count();
  if (second != s.second) {
    std::tm tm{};
    gmtime_r(&second, &tm);
    char buf[32];
    const auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.", &tm);
    s.second_text.assign(buf, n);
    s.second = second;
  }
  char ms[8];
  std::snprintf(ms, sizeof(ms), "%03dZ", static_cast<int>(millis.count()));
  if (format_ == protocol::log_format::json) {
    s.buffer += R"({"ts":")";
    s.buffer += s.second_text;
    s.buffer += ms;
    s.buffer += R"(","level":"info","logger":"http",)";
    s.buffer += fields.str();
    s.buffer += "}\n";
  } else {
    s.buffer += s.second_text;
    s.buffer += ms;
    s.buffer += " info http ";
    s.buffer += fields.str();
    s.buffer += '\n';
  }
  if (s.buffer.size() >= high_water) {
    flush(index);
  }
}

void access_log::flush(std::size_t index) {
  auto& s = slots_.at(index);
  if (!s.buffer.empty()) {
    protocol::write_stdout(s.buffer);
    s.buffer.clear();
  }
}

} // namespace troupe::http

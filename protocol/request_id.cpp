#include "protocol/request_id.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <random>

namespace troupe::protocol {

bool valid_traceparent(std::string_view value) {
  constexpr std::size_t size = 55; // 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (value.size() != size || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return false;
  }
  const auto lower_hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  };
  bool trace_zero = true;
  bool parent_zero = true;
  for (std::size_t i = 0; i < size; ++i) {
    if (i == 2 || i == 35 || i == 52) {
      continue;
    }
    if (!lower_hex(value[i])) {
      return false;
    }
    if (value[i] != '0') {
      trace_zero = trace_zero && !(i > 2 && i < 35);
      parent_zero = parent_zero && !(i > 35 && i < 52);
    }
  }
  return value.substr(0, 2) != "ff" && !trace_zero && !parent_zero;
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = text[i];
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (dash ? c != '-' : !hex) {
      return false;
    }
  }
  return true;
}

bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string new_uuid_v7() {
  // One generator per thread, seeded from the OS: no lock on the request path.
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  const auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
  const std::uint64_t r1 = gen();
  const std::uint64_t r2 = gen();
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  }
  b[6] = static_cast<std::uint8_t>(0x70 | ((r1 >> 8) & 0x0f)); // version 7
  b[7] = static_cast<std::uint8_t>(r1);
  b[8] = static_cast<std::uint8_t>(0x80 | ((r2 >> 56) & 0x3f)); // variant 10
  for (int i = 9; i < 16; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(r2 >> (8 * (15 - i)));
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out.push_back('-');
    }
    out.push_back(hex[b[i] >> 4]);
    out.push_back(hex[b[i] & 0x0f]);
  }
  return out;
}

std::string new_request_id() {
  return new_uuid_v7();
}

} // namespace troupe::protocol

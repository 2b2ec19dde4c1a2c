#include "http/query.hpp"

#include "http/router.hpp"
#include "protocol/crypto.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

namespace troupe::http {

std::optional<std::map<std::string, std::string>>
parse_query(std::string_view query, const std::set<std::string>& allowed, std::string& error) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    std::string raw_name{pair.substr(0, eq)};
    std::string raw_value{eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1)};
    std::replace(raw_name.begin(), raw_name.end(), '+', ' ');
    std::replace(raw_value.begin(), raw_value.end(), '+', ' ');
    std::string name;
    std::string value;
    if (!percent_decode(raw_name, name) || !percent_decode(raw_value, value)) {
      error = "the query string has a malformed %-escape";
      return std::nullopt;
    }
    if (allowed.count(name) == 0) {
      error = "unknown query parameter \"" + name + "\"";
      return std::nullopt;
    }
    if (!out.emplace(name, std::move(value)).second) {
      error = "query parameter \"" + name + "\" is given twice";
      return std::nullopt;
    }
  }
  return out;
}

std::optional<std::uint32_t> page_limit(const std::map<std::string, std::string>& params) {
  const auto it = params.find("limit");
  if (it == params.end()) {
    return 50;
  }
  const auto& text = it->second;
  const bool digits = !text.empty() && text.size() <= 3
                      && std::all_of(text.begin(), text.end(),
                                     [](unsigned char c) { return std::isdigit(c) != 0; });
  const auto n = digits ? std::stoul(text) : 0UL;
  if (n < 1 || n > 200) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(n);
}

std::string encode_cursor(std::string_view position) {
  return protocol::crypto::base64url(position);
}

std::optional<std::string> decode_cursor(std::string_view cursor) {
  return protocol::crypto::unbase64url(cursor);
}

bool is_rfc3339(std::string_view s) {
  auto digits = [&s](std::size_t at, std::size_t n) {
    if (at + n > s.size()) {
      return false;
    }
    return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(at),
                       s.begin() + static_cast<std::ptrdiff_t>(at + n),
                       [](unsigned char c) { return std::isdigit(c) != 0; });
  };
  auto is = [&s](std::size_t at, char c) {
    return at < s.size() && s[at] == c;
  };
  // YYYY-MM-DDTHH:MM:SS
  if (!(digits(0, 4) && is(4, '-') && digits(5, 2) && is(7, '-') && digits(8, 2)
        && (is(10, 'T') || is(10, 't')) && digits(11, 2) && is(13, ':') && digits(14, 2)
        && is(16, ':') && digits(17, 2))) {
    return false;
  }
  auto number = [&s](std::size_t at) {
    return (s[at] - '0') * 10 + (s[at + 1] - '0');
  };
  const int month = number(5);
  const int day = number(8);
  const int year = number(0) * 100 + number(2);
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > days[month - 1] + (month == 2 && leap ? 1 : 0)
      || number(11) > 23 || number(14) > 59 || number(17) > 59) {
    return false;
  }
  std::size_t at = 19;
  if (is(at, '.')) {
    ++at;
    const auto start = at;
    while (at < s.size() && std::isdigit(static_cast<unsigned char>(s[at])) != 0) {
      ++at;
    }
    if (at == start || at - start > 9) {
      return false;
    }
  }
  if (is(at, 'Z') || is(at, 'z')) {
    return at + 1 == s.size();
  }
  if (is(at, '+') || is(at, '-')) {
    return at + 6 == s.size() && digits(at + 1, 2) && is(at + 3, ':') && digits(at + 4, 2)
           && number(at + 1) <= 23 && number(at + 4) <= 59;
  }
  return false;
}

std::optional<std::int64_t> rfc3339_seconds(std::string_view text) {
  if (!is_rfc3339(text)) {
    return std::nullopt;
  }
  auto number = [&text](std::size_t at, std::size_t n) {
    std::int64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = v * 10 + (text[at + i] - '0');
    }
    return v;
  };
  std::tm t{};
  t.tm_year = static_cast<int>(number(0, 4)) - 1900;
  t.tm_mon = static_cast<int>(number(5, 2)) - 1;
  t.tm_mday = static_cast<int>(number(8, 2));
  t.tm_hour = static_cast<int>(number(11, 2));
  t.tm_min = static_cast<int>(number(14, 2));
  t.tm_sec = static_cast<int>(number(17, 2));
  auto seconds = static_cast<std::int64_t>(timegm(&t));
  const auto zone = text.find_first_of("Zz+-", 19);
  if (text[zone] == '+' || text[zone] == '-') {
    const auto offset = number(zone + 1, 2) * 3600 + number(zone + 4, 2) * 60;
    seconds += text[zone] == '+' ? -offset : offset;
  }
  return seconds;
}

} // namespace troupe::http

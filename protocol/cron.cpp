#include "protocol/cron.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace troupe::protocol::cron {

namespace {

constexpr std::int64_t seconds_per_day = 86400;
constexpr std::int64_t search_days = std::int64_t{30} * 366; // 30 years and then some
constexpr std::int64_t instant_limit = std::int64_t{1} << 50;
constexpr std::size_t max_digits = 9;

// What one field accepts. `max` is the largest value written; `star_max` the largest `*` and
// `a/s` reach (day of week: 7 is Sunday again, so they stop at 6).
struct field_spec {
  const char* name;
  int min;
  int max;
  int star_max;
  const std::array<std::string_view, 12>* names; // names[i] is value i + name_base
  int name_base;
  bool day_field; // accepts `?`
};

constexpr std::array<std::string_view, 12> month_names
  = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> day_names
  = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr field_spec second_field{"second", 0, 59, 59, nullptr, 0, false};
constexpr field_spec minute_field{"minute", 0, 59, 59, nullptr, 0, false};
constexpr field_spec hour_field{"hour", 0, 23, 23, nullptr, 0, false};
constexpr field_spec dom_field{"day of month", 1, 31, 31, nullptr, 0, true};
constexpr field_spec month_field{"month", 1, 12, 12, &month_names, 1, false};
constexpr field_spec dow_field{"day of week", 0, 7, 6, &day_names, 0, true};

struct macro {
  std::string_view name;
  std::string_view expansion;
};

constexpr std::array<macro, 7> macros = {{
  {"@yearly", "0 0 1 1 *"},
  {"@annually", "0 0 1 1 *"},
  {"@monthly", "0 0 1 * *"},
  {"@weekly", "0 0 * * 0"},
  {"@daily", "0 0 * * *"},
  {"@midnight", "0 0 * * *"},
  {"@hourly", "0 * * * *"},
}};

bool blank(char c) {
  return c == ' ' || c == '\t';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == y; });
}

std::string quoted(std::string_view text) {
  return "'" + std::string{text} + "'";
}

// Digits only, at most max_digits of them.
std::optional<int> parse_number(std::string_view text) {
  if (text.empty() || text.size() > max_digits) {
    return std::nullopt;
  }
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

bool all_digits(std::string_view text) {
  return !text.empty()
         && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

class field_parser {
public:
  field_parser(const field_spec& spec, std::string& error) : spec_(spec), error_(error) {}

  // The values `text` allows as bits, or nullopt after setting error_.
  std::optional<std::uint64_t> parse(std::string_view text) {
    std::uint64_t bits = 0;
    std::size_t start = 0;
    while (true) {
      const auto comma = std::min(text.find(',', start), text.size());
      if (!add_item(text.substr(start, comma - start), bits)) {
        return std::nullopt;
      }
      if (comma == text.size()) {
        break;
      }
      start = comma + 1;
    }
    if (spec_.max == 7 && (bits & (std::uint64_t{1} << 7)) != 0) {
      bits = (bits & ~(std::uint64_t{1} << 7)) | 1U; // 7 is Sunday
    }
    return bits;
  }

private:
  bool fail(std::string message) {
    error_ = std::string{spec_.name} + ": " + std::move(message);
    return false;
  }

  std::optional<int> value(std::string_view text) {
    if (all_digits(text)) {
      auto number = parse_number(text);
      if (!number || *number < spec_.min || *number > spec_.max) {
        fail(std::string{text} + " is out of range " + std::to_string(spec_.min) + "-"
             + std::to_string(spec_.max));
        return std::nullopt;
      }
      return number;
    }
    if (spec_.names != nullptr) {
      for (std::size_t i = 0; i < spec_.names->size(); ++i) {
        const auto name = (*spec_.names)[i];
        if (!name.empty() && equal_ignoring_case(text, name)) {
          return static_cast<int>(i) + spec_.name_base;
        }
      }
    }
    fail(quoted(text) + " is not a valid value");
    return std::nullopt;
  }

  bool add_item(std::string_view item, std::uint64_t& bits) {
    if (item.empty()) {
      return fail("empty item");
    }
    const auto slash = item.find('/');
    const auto base = item.substr(0, slash);
    int step = 1;
    if (slash != std::string_view::npos) {
      const auto step_text = item.substr(slash + 1);
      auto parsed = all_digits(step_text) ? parse_number(step_text) : std::nullopt;
      if (!parsed) {
        return fail(quoted(step_text) + " is not a valid step");
      }
      if (*parsed < 1) {
        return fail("step " + std::string{step_text} + " must be at least 1");
      }
      step = *parsed;
    }
    int low = 0;
    int high = 0;
    if (base == "*" || base == "?") {
      if (base == "?" && !spec_.day_field) {
        return fail("'?' is only allowed in the day fields");
      }
      if (base == "?" && slash != std::string_view::npos) {
        return fail("'?' cannot take a step");
      }
      low = spec_.min;
      high = spec_.star_max;
    } else if (const auto dash = base.find('-'); dash != std::string_view::npos) {
      auto first = value(base.substr(0, dash));
      if (!first) {
        return false;
      }
      auto last = value(base.substr(dash + 1));
      if (!last) {
        return false;
      }
      if (*first > *last) {
        return fail(quoted(base) + " is a reversed range");
      }
      low = *first;
      high = *last;
    } else {
      auto single = value(base);
      if (!single) {
        return false;
      }
      low = *single;
      high = slash == std::string_view::npos ? *single : std::max(*single, spec_.star_max);
    }
    for (int v = low; v <= high; v += step) {
      bits |= std::uint64_t{1} << v;
    }
    return true;
  }

  const field_spec& spec_;
  std::string& error_;
};

template <std::size_t N>
std::bitset<N> to_bitset(std::uint64_t bits) {
  return std::bitset<N>{static_cast<unsigned long long>(bits)};
}

std::optional<expression> parse_fields(std::string_view text, std::string& error) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && blank(text[i])) {
      ++i;
    }
    const auto start = i;
    while (i < text.size() && !blank(text[i])) {
      ++i;
    }
    if (i > start) {
      fields.push_back(text.substr(start, i - start));
    }
  }
  if (fields.empty()) {
    error = "empty expression";
    return std::nullopt;
  }
  if (fields.size() != 5 && fields.size() != 6) {
    error = "expected 5 or 6 fields, got " + std::to_string(fields.size());
    return std::nullopt;
  }
  expression e;
  e.has_seconds = fields.size() == 6;
  const std::size_t first = e.has_seconds ? 1 : 0;
  auto field = [&](const field_spec& spec, std::string_view t) {
    return field_parser{spec, error}.parse(t);
  };
  auto seconds = e.has_seconds ? field(second_field, fields[0]) : std::uint64_t{1};
  if (!seconds) {
    return std::nullopt;
  }
  auto minutes = field(minute_field, fields[first]);
  if (!minutes) {
    return std::nullopt;
  }
  auto hours = field(hour_field, fields[first + 1]);
  if (!hours) {
    return std::nullopt;
  }
  auto dom = field(dom_field, fields[first + 2]);
  if (!dom) {
    return std::nullopt;
  }
  auto months = field(month_field, fields[first + 3]);
  if (!months) {
    return std::nullopt;
  }
  auto dow = field(dow_field, fields[first + 4]);
  if (!dow) {
    return std::nullopt;
  }
  e.seconds = to_bitset<60>(*seconds);
  e.minutes = to_bitset<60>(*minutes);
  e.hours = to_bitset<24>(*hours);
  e.days_of_month = to_bitset<32>(*dom);
  e.months = to_bitset<13>(*months);
  e.days_of_week = to_bitset<7>(*dow);
  // Vixie cron: a day field that starts with `*` (or is `?`) does not restrict, so `*/2` in
  // day-of-month combines with day-of-week by AND, not OR.
  auto restricts = [](std::string_view f) {
    return !f.empty() && f[0] != '*' && f != "?";
  };
  e.dom_restricted = restricts(fields[first + 2]);
  e.dow_restricted = restricts(fields[first + 4]);
  return e;
}

// Howard Hinnant's days_from_civil and civil_from_days (proleptic Gregorian calendar).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

// 0 = Sunday.
unsigned weekday_from_days(std::int64_t z) {
  return static_cast<unsigned>(z >= -4 ? (z + 4) % 7 : (z + 5) % 7 + 6);
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0);
}

bool day_matches(const expression& e, const civil& date, unsigned weekday) {
  const bool dom = e.days_of_month[date.day];
  const bool dow = e.days_of_week[weekday];
  return e.dom_restricted && e.dow_restricted ? dom || dow : dom && dow;
}

} // namespace

std::optional<expression> parse(std::string_view text, std::string* error) {
  std::string why;
  auto fail = [&](std::string message) {
    if (error != nullptr) {
      *error = std::move(message);
    }
    return std::nullopt;
  };
  if (text.size() > max_length) {
    return fail("the expression is longer than 256 characters");
  }
  while (!text.empty() && blank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && blank(text.back())) {
    text.remove_suffix(1);
  }
  if (!text.empty() && text.front() == '@') {
    for (const auto& m : macros) {
      if (equal_ignoring_case(text, m.name)) {
        return parse_fields(m.expansion, why);
      }
    }
    return fail("unknown macro " + quoted(text));
  }
  auto result = parse_fields(text, why);
  if (!result) {
    return fail(why);
  }
  return result;
}

std::optional<std::int64_t> next(const expression& e, const zoneinfo::zone& z,
                                 std::int64_t after_utc_s) {
  if (after_utc_s < -instant_limit || after_utc_s > instant_limit) {
    return std::nullopt;
  }
  // Local civil times map to instants monotonically (a gap to its transition, a repeated time
  // to its first occurrence) and the local time of `after` maps to `after` or earlier, so the
  // answer is the first matching local time after it whose instant is after `after`.
  const auto after_local = after_utc_s + z.offset_at(after_utc_s);
  const auto first_day = floor_div(after_local, seconds_per_day);
  auto day = first_day;
  while (day <= first_day + search_days) {
    const auto date = civil_from_days(day);
    if (!e.months[date.month]) {
      const auto next_month
        = date.month == 12 ? civil{date.year + 1, 1, 1} : civil{date.year, date.month + 1, 1};
      day = days_from_civil(next_month.year, next_month.month, 1);
      continue;
    }
    if (day_matches(e, date, weekday_from_days(day))) {
      const auto day_s = day * seconds_per_day;
      for (std::int64_t h = 0; h < 24; ++h) {
        const auto hour_s = day_s + h * 3600;
        if (!e.hours[static_cast<std::size_t>(h)] || hour_s + 3599 <= after_local) {
          continue;
        }
        for (std::int64_t m = 0; m < 60; ++m) {
          const auto minute_s = hour_s + m * 60;
          if (!e.minutes[static_cast<std::size_t>(m)] || minute_s + 59 <= after_local) {
            continue;
          }
          for (std::int64_t s = 0; s < 60; ++s) {
            const auto local = minute_s + s;
            if (!e.seconds[static_cast<std::size_t>(s)] || local <= after_local) {
              continue;
            }
            // unique: the instant; ambiguous: the first occurrence; gap: the transition.
            const auto at = z.resolve(local).first;
            if (at > after_utc_s) {
              return at;
            }
          }
        }
      }
    }
    ++day;
  }
  return std::nullopt;
}

} // namespace troupe::protocol::cron

#include "protocol/zoneinfo.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>

namespace troupe::protocol::zoneinfo {

namespace {

constexpr std::size_t max_name_length = 255;
constexpr std::size_t max_file_size = 1 << 20; // real TZif files are a few KiB
constexpr std::int64_t seconds_per_day = 86400;
// RFC 8536 section 3.2: utoff SHOULD be in [-89999, 93599] (-24:59:59 to 25:59:59).
constexpr std::int32_t min_offset = -89999;
constexpr std::int32_t max_offset = 93599;
// Wider than any offset, so every instant of a local time lies within this of it.
constexpr std::int64_t window_s = 2 * seconds_per_day;
// Instants are clamped to this before any calendar arithmetic, which then cannot overflow.
constexpr std::int64_t instant_limit = std::int64_t{1} << 51;
constexpr std::int64_t local_limit = std::int64_t{1} << 50;

void fail(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
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

std::int64_t year_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

// 0 = Sunday.
unsigned weekday_from_days(std::int64_t z) {
  return static_cast<unsigned>(z >= -4 ? (z + 4) % 7 : (z + 5) % 7 + 6);
}

bool leap_year(std::int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

unsigned last_day_of_month(std::int64_t y, unsigned m) {
  constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0);
}

// Big-endian reads from a TZif file.
class reader {
public:
  explicit reader(std::string_view data) : data_(data) {}

  bool has(std::uint64_t n) const {
    return n <= data_.size() - pos_;
  }

  std::size_t position() const {
    return pos_;
  }

  std::string_view rest() const {
    return data_.substr(pos_);
  }

  void skip(std::size_t n) {
    pos_ += n;
  }

  std::uint64_t unsigned_be(std::size_t n) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < n; ++i) {
      value = (value << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    }
    pos_ += n;
    return value;
  }

  std::int64_t signed_be(std::size_t n) {
    const auto value = unsigned_be(n);
    if (n == 8) {
      return static_cast<std::int64_t>(value);
    }
    const auto sign = std::uint64_t{1} << (8 * n - 1);
    return static_cast<std::int64_t>(value ^ sign) - static_cast<std::int64_t>(sign);
  }

private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

struct header {
  char version = 0;
  std::uint64_t isutcnt = 0;
  std::uint64_t isstdcnt = 0;
  std::uint64_t leapcnt = 0;
  std::uint64_t timecnt = 0;
  std::uint64_t typecnt = 0;
  std::uint64_t charcnt = 0;

  // The size of the data block after this header, with `time_size`-byte times.
  std::uint64_t block_size(std::uint64_t time_size) const {
    return timecnt * time_size + timecnt + typecnt * 6 + charcnt + leapcnt * (time_size + 4)
           + isstdcnt + isutcnt;
  }
};

std::optional<header> read_header(reader& in, std::string& error) {
  if (!in.has(44) || in.rest().substr(0, 4) != "TZif") {
    error = "not a TZif file";
    return std::nullopt;
  }
  in.skip(4);
  header h;
  h.version = in.rest()[0];
  if (h.version != 0 && (h.version < '2' || h.version > '4')) {
    error = "unsupported TZif version";
    return std::nullopt;
  }
  in.skip(16);
  h.isutcnt = in.unsigned_be(4);
  h.isstdcnt = in.unsigned_be(4);
  h.leapcnt = in.unsigned_be(4);
  h.timecnt = in.unsigned_be(4);
  h.typecnt = in.unsigned_be(4);
  h.charcnt = in.unsigned_be(4);
  if (h.typecnt == 0 || (h.isutcnt != 0 && h.isutcnt != h.typecnt)
      || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)) {
    error = "malformed TZif header";
    return std::nullopt;
  }
  if (h.leapcnt != 0) {
    error = "TZif files with leap seconds are not supported";
    return std::nullopt;
  }
  return h;
}

// Parsing a POSIX TZ string (RFC 8536 section 3.3).
class tz_scanner {
public:
  explicit tz_scanner(std::string_view text) : text_(text) {}

  bool done() const {
    return pos_ == text_.size();
  }

  char peek() const {
    return done() ? '\0' : text_[pos_];
  }

  bool accept(char c) {
    if (peek() == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // `<[A-Za-z0-9+-]+>` or `[A-Za-z]{3,}`.
  bool designation() {
    if (accept('<')) {
      const auto start = pos_;
      while (!done() && (is_alpha(peek()) || is_digit(peek()) || peek() == '+' || peek() == '-')) {
        ++pos_;
      }
      return pos_ > start && accept('>');
    }
    const auto start = pos_;
    while (!done() && is_alpha(peek())) {
      ++pos_;
    }
    return pos_ - start >= 3;
  }

  // `[+-]hh[:mm[:ss]]` with hours up to `max_hours`, in seconds.
  std::optional<std::int32_t> duration(int max_hours) {
    std::int32_t sign = 1;
    if (accept('-')) {
      sign = -1;
    } else {
      accept('+');
    }
    auto hours = number(3);
    if (!hours || *hours > max_hours) {
      return std::nullopt;
    }
    std::int32_t total = *hours * 3600;
    if (accept(':')) {
      auto minutes = number(2);
      if (!minutes || *minutes > 59) {
        return std::nullopt;
      }
      total += *minutes * 60;
      if (accept(':')) {
        auto seconds = number(2);
        if (!seconds || *seconds > 59) {
          return std::nullopt;
        }
        total += *seconds;
      }
    }
    return sign * total;
  }

  // 1 to `max_digits` decimal digits.
  std::optional<std::int32_t> number(std::size_t max_digits) {
    const auto start = pos_;
    std::int32_t value = 0;
    while (!done() && is_digit(peek()) && pos_ - start < max_digits) {
      value = value * 10 + (peek() - '0');
      ++pos_;
    }
    if (pos_ == start || (!done() && is_digit(peek()))) {
      return std::nullopt;
    }
    return value;
  }

private:
  static bool is_alpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  }

  static bool is_digit(char c) {
    return c >= '0' && c <= '9';
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

bool valid_offset(std::int64_t offset) {
  return offset >= min_offset && offset <= max_offset;
}

} // namespace

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > max_name_length || name.front() == '/') {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '_' || c == '+' || c == '-' || c == '/';
    if (!ok) {
      return false;
    }
  }
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto slash = std::min(name.find('/', start), name.size());
    const auto segment = name.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return false;
    }
    start = slash + 1;
  }
  return true;
}

std::optional<zone> zone::load(std::string_view name, std::string* error) {
  return load_from(default_root, name, error);
}

std::optional<zone> zone::load_from(std::string_view root, std::string_view name,
                                    std::string* error) {
  if (!valid_name(name)) {
    fail(error, "invalid time zone name");
    return std::nullopt;
  }
  std::string path{root};
  path.push_back('/');
  path.append(name);
  std::ifstream file{path, std::ios::binary};
  if (!file.is_open()) {
    fail(error, "unknown time zone " + std::string{name});
    return std::nullopt;
  }
  std::string data(max_file_size + 1, '\0');
  file.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(std::max<std::streamsize>(file.gcount(), 0)));
  if (file.bad() || data.empty()) {
    fail(error, "cannot read time zone " + std::string{name});
    return std::nullopt;
  }
  if (data.size() > max_file_size) {
    fail(error, "time zone " + std::string{name} + ": file too large");
    return std::nullopt;
  }
  std::string why;
  auto result = parse(name, data, &why);
  if (!result) {
    fail(error, "time zone " + std::string{name} + ": " + why);
  }
  return result;
}

std::optional<zone> zone::parse(std::string_view name, std::string_view tzif, std::string* error) {
  std::string why;
  reader in{tzif};
  auto h = read_header(in, why);
  if (!h) {
    fail(error, why);
    return std::nullopt;
  }
  std::size_t time_size = 4;
  if (h->version != 0) {
    // Skip the 32-bit block: the 64-bit one after the second header supersedes it.
    if (!in.has(h->block_size(4))) {
      fail(error, "truncated TZif file");
      return std::nullopt;
    }
    in.skip(static_cast<std::size_t>(h->block_size(4)));
    h = read_header(in, why);
    if (!h) {
      fail(error, why);
      return std::nullopt;
    }
    time_size = 8;
  }
  if (!in.has(h->block_size(time_size))) {
    fail(error, "truncated TZif file");
    return std::nullopt;
  }
  zone z;
  z.name_ = std::string{name};
  const auto count = static_cast<std::size_t>(h->timecnt);
  z.transitions_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto at = in.signed_be(time_size);
    if (!z.transitions_.empty() && at <= z.transitions_.back()) {
      fail(error, "TZif transitions are not in ascending order");
      return std::nullopt;
    }
    z.transitions_.push_back(at);
  }
  std::vector<std::size_t> type_of(count);
  for (auto& type : type_of) {
    type = static_cast<std::size_t>(in.unsigned_be(1));
    if (type >= h->typecnt) {
      fail(error, "TZif transition refers to a missing local time type");
      return std::nullopt;
    }
  }
  std::vector<std::int32_t> type_offsets;
  for (std::uint64_t i = 0; i < h->typecnt; ++i) {
    const auto offset = in.signed_be(4);
    in.skip(2); // isdst and the designation index: not needed
    if (!valid_offset(offset)) {
      fail(error, "TZif local time type has an offset out of range");
      return std::nullopt;
    }
    type_offsets.push_back(static_cast<std::int32_t>(offset));
  }
  in.skip(static_cast<std::size_t>(h->charcnt + h->isstdcnt + h->isutcnt)); // no leap records
  z.initial_offset_ = type_offsets[0];
  z.offsets_.reserve(count);
  for (auto type : type_of) {
    z.offsets_.push_back(type_offsets[type]);
  }
  if (time_size == 8) {
    auto rest = in.rest();
    const auto end = rest.size() > 1 ? rest.find('\n', 1) : std::string_view::npos;
    if (rest.empty() || rest.front() != '\n' || end == std::string_view::npos) {
      fail(error, "TZif footer is missing");
      return std::nullopt;
    }
    const auto footer = rest.substr(1, end - 1);
    if (!footer.empty()) {
      z.rule_ = parse_rule(footer);
      if (!z.rule_) {
        fail(error, "TZif footer '" + std::string{footer} + "' is not a TZ string we understand");
        return std::nullopt;
      }
    }
  }
  return z;
}

std::optional<zone::tz_rule> zone::parse_rule(std::string_view text) {
  tz_scanner in{text};
  tz_rule rule;
  if (!in.designation()) {
    return std::nullopt;
  }
  auto std_offset = in.duration(24);
  if (!std_offset) {
    return std::nullopt;
  }
  rule.std_offset = -*std_offset; // POSIX offsets are positive west of Greenwich
  if (in.done()) {
    return rule;
  }
  if (!in.designation()) {
    return std::nullopt;
  }
  rule.has_dst = true;
  rule.dst_offset = rule.std_offset + 3600;
  if (!in.done() && in.peek() != ',') {
    auto dst_offset = in.duration(24);
    if (!dst_offset) {
      return std::nullopt;
    }
    rule.dst_offset = -*dst_offset;
  }
  if (!valid_offset(rule.std_offset) || !valid_offset(rule.dst_offset)) {
    return std::nullopt;
  }
  if (in.done()) {
    // No rule: the United States' since 2007, as tzcode and glibc assume.
    rule.start = rule_day{rule_day::month_week_day, 3, 2, 0, 7200};
    rule.end = rule_day{rule_day::month_week_day, 11, 1, 0, 7200};
    return rule;
  }
  for (auto* day : {&rule.start, &rule.end}) {
    if (!in.accept(',')) {
      return std::nullopt;
    }
    if (in.accept('J')) {
      auto n = in.number(3);
      if (!n || *n < 1 || *n > 365) {
        return std::nullopt;
      }
      *day = rule_day{rule_day::julian, 0, 0, *n, 7200};
    } else if (in.accept('M')) {
      auto m = in.number(2);
      auto w = m && in.accept('.') ? in.number(1) : std::nullopt;
      auto d = w && in.accept('.') ? in.number(1) : std::nullopt;
      if (!d || *m < 1 || *m > 12 || *w < 1 || *w > 5 || *d > 6) {
        return std::nullopt;
      }
      *day = rule_day{rule_day::month_week_day, *m, *w, *d, 7200};
    } else {
      auto n = in.number(3);
      if (!n || *n > 365) {
        return std::nullopt;
      }
      *day = rule_day{rule_day::zero_based, 0, 0, *n, 7200};
    }
    if (in.accept('/')) {
      auto time = in.duration(167); // RFC 8536 3.3.1: -167 to 167 hours
      if (!time) {
        return std::nullopt;
      }
      day->time_s = *time;
    }
  }
  if (!in.done()) {
    return std::nullopt;
  }
  return rule;
}

std::vector<zone::change> zone::rule_changes_near(std::int64_t utc_s) const {
  const auto& r = *rule_;
  // Local midnight of a rule day, as local seconds.
  auto day_start = [](std::int64_t year, const rule_day& d) {
    std::int64_t days = 0;
    switch (d.form) {
    case rule_day::julian:
      days = days_from_civil(year, 1, 1) + d.day - 1 + (leap_year(year) && d.day >= 60 ? 1 : 0);
      break;
    case rule_day::zero_based:
      days = days_from_civil(year, 1, 1) + d.day;
      break;
    case rule_day::month_week_day: {
      const auto month = static_cast<unsigned>(d.month);
      const auto first = days_from_civil(year, month, 1);
      const auto first_weekday = static_cast<int>(weekday_from_days(first));
      int mday = 1 + (d.day - first_weekday + 7) % 7 + 7 * (d.week - 1);
      while (mday > static_cast<int>(last_day_of_month(year, month))) {
        mday -= 7;
      }
      days = first + mday - 1;
      break;
    }
    }
    return days * seconds_per_day;
  };
  const auto year = year_from_days(floor_div(utc_s, seconds_per_day));
  std::vector<change> out;
  out.reserve(8);
  for (auto y = year - 1; y <= year + 2; ++y) {
    // The start is given in standard time, the end in daylight time (the local time in effect).
    out.push_back({day_start(y, r.start) + r.start.time_s - r.std_offset, r.dst_offset});
    out.push_back({day_start(y, r.end) + r.end.time_s - r.dst_offset, r.std_offset});
  }
  // On a tie the change into daylight time wins, as it comes last (permanent daylight time
  // written as `EST5EDT4,0/0,J365/25`).
  std::stable_sort(out.begin(), out.end(), [&r](const change& a, const change& b) {
    if (a.at != b.at) {
      return a.at < b.at;
    }
    return a.offset == r.std_offset && b.offset != r.std_offset;
  });
  return out;
}

std::int32_t zone::rule_offset_at(std::int64_t utc_s) const {
  const auto& r = *rule_;
  if (!r.has_dst) {
    return r.std_offset;
  }
  const auto changes = rule_changes_near(utc_s);
  auto after = std::upper_bound(changes.begin(), changes.end(), utc_s,
                                [](std::int64_t t, const change& c) { return t < c.at; });
  if (after == changes.begin()) {
    return after->offset == r.dst_offset ? r.std_offset : r.dst_offset;
  }
  return std::prev(after)->offset;
}

const std::string& zone::name() const {
  return name_;
}

std::int32_t zone::offset_at(std::int64_t utc_s) const {
  utc_s = std::clamp(utc_s, -instant_limit, instant_limit);
  auto after = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
  if (after == transitions_.end() && rule_) {
    return rule_offset_at(utc_s);
  }
  if (after == transitions_.begin()) {
    return initial_offset_;
  }
  return offsets_[static_cast<std::size_t>(after - transitions_.begin()) - 1];
}

std::optional<std::int64_t> zone::next_change(std::int64_t utc_s) const {
  utc_s = std::clamp(utc_s, -instant_limit, instant_limit);
  auto after = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
  if (after != transitions_.end()) {
    return *after;
  }
  if (rule_ && rule_->has_dst) {
    for (const auto& c : rule_changes_near(utc_s)) {
      if (c.at > utc_s) {
        return c.at;
      }
    }
  }
  return std::nullopt;
}

zone::resolution zone::resolve(std::int64_t local_s) const {
  const auto local = std::clamp(local_s, -local_limit, local_limit);
  // The stretches of constant offset around the local time, by UTC start; every instant that
  // can show `local` lies within window_s of it.
  const auto low = local - window_s;
  const auto high = local + window_s;
  std::vector<change> stretches{{low, offset_at(low)}};
  for (auto at = next_change(low); at && *at <= high; at = next_change(*at)) {
    stretches.push_back({*at, offset_at(*at)});
  }
  std::optional<std::int64_t> earliest;
  std::optional<std::int64_t> latest;
  for (std::size_t i = 0; i < stretches.size(); ++i) {
    const auto candidate = local - stretches[i].offset;
    const auto end = i + 1 < stretches.size() ? stretches[i + 1].at : high + 1;
    if (candidate >= stretches[i].at && candidate < end) {
      earliest = earliest ? std::min(*earliest, candidate) : candidate;
      latest = latest ? std::max(*latest, candidate) : candidate;
    }
  }
  if (earliest) {
    const auto kind = *earliest == *latest ? resolution::unique : resolution::ambiguous;
    return {kind, *earliest, *latest};
  }
  // A gap: the change that jumped over `local`.
  for (std::size_t i = 1; i < stretches.size(); ++i) {
    const auto at = stretches[i].at;
    if (at + stretches[i - 1].offset <= local && local < at + stretches[i].offset) {
      return {resolution::gap, at, at};
    }
  }
  for (std::size_t i = 1; i < stretches.size(); ++i) {
    if (stretches[i].at + stretches[i].offset > local) {
      return {resolution::gap, stretches[i].at, stretches[i].at};
    }
  }
  const auto fallback = local - stretches.front().offset; // unreachable with valid offsets
  return {resolution::unique, fallback, fallback};
}

std::shared_ptr<const zone> cached(std::string_view name, std::string* error) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const zone>, std::less<>> zones;
  {
    std::lock_guard<std::mutex> guard{mutex};
    if (auto i = zones.find(name); i != zones.end()) {
      return i->second;
    }
  }
  // Read outside the lock; two threads missing at once both read, the first insert wins.
  auto loaded = zone::load(name, error);
  if (!loaded) {
    return nullptr;
  }
  auto shared = std::make_shared<const zone>(std::move(*loaded));
  std::lock_guard<std::mutex> guard{mutex};
  return zones.emplace(std::string{name}, std::move(shared)).first->second;
}

} // namespace troupe::protocol::zoneinfo

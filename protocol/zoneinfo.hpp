#pragma once

// IANA time zones from the system's compiled TZif files (RFC 8536), for turning local civil
// times into instants and back. The only I/O is reading one file under the zoneinfo root.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::protocol::zoneinfo {

/// Where the system keeps its TZif files.
inline constexpr std::string_view default_root = "/usr/share/zoneinfo";

/// True if `name` may name a zone: 1 to 255 characters of `[A-Za-z0-9_+-/]`, not starting
/// with `/`, without empty, `.` or `..` segments. Says nothing about whether the zone exists.
bool valid_name(std::string_view name);

/// One time zone: its transitions and the POSIX TZ rule that governs instants after the last
/// of them. Immutable once loaded, so any number of threads may share one.
///
/// Instants and local times are whole seconds; local seconds count from 1970-01-01T00:00 in
/// local civil time. Beyond ±2^50 seconds (about 35 million years) times are clamped.
///
/// The footer may use RFC 8536's extensions (transition hours from -167 to 167, negative
/// daylight saving time as in Europe/Dublin); one with daylight time but no rule (`EST5EDT`)
/// gets the United States' rule, as tzcode and glibc give it.
class zone {
public:
  /// Loads `<default_root>/<name>`; nullopt + `error` if the name is not valid, the file is
  /// missing or unreadable, or it is not a TZif file we understand. Blocking (reads a file).
  [[nodiscard]] static std::optional<zone> load(std::string_view name,
                                                std::string* error = nullptr);

  /// As `load`, but from `<root>/<name>` (tests, other tzdata copies).
  [[nodiscard]] static std::optional<zone> load_from(std::string_view root, std::string_view name,
                                                     std::string* error = nullptr);

  /// Parses the contents of a TZif file (v1, or the 64-bit block and footer of v2 and later)
  /// and names the result `name`, which is not validated; nullopt + `error` if it is malformed,
  /// uses leap seconds (the `right/` zones) or has offsets outside RFC 8536's recommended
  /// range (-24:59:59 to +25:59:59).
  [[nodiscard]] static std::optional<zone> parse(std::string_view name, std::string_view tzif,
                                                 std::string* error = nullptr);

  /// The name the zone was loaded as.
  const std::string& name() const;

  /// The offset from UTC at `utc_s`, in seconds east of Greenwich (New York in winter: -18000).
  /// Before the first transition the file's first local time type applies (RFC 8536), after
  /// the last one its footer rule when it has one, else the last type.
  std::int32_t offset_at(std::int64_t utc_s) const;

  /// What a local civil time corresponds to.
  struct resolution {
    enum kind_t {
      unique,    ///< one instant: first == second
      gap,       ///< skipped (spring forward): first == second == the transition instant,
                 ///< the first instant after the gap
      ambiguous, ///< repeated (fall back): first is the earlier instant, second the later
    } kind;
    std::int64_t first;
    std::int64_t second;
  };

  /// The UTC instant(s) of the local civil time `local_s`.
  resolution resolve(std::int64_t local_s) const;

private:
  // A day of a POSIX TZ rule: `Jn` (1-365, February 29 never counted), `n` (0-365) or
  // `Mm.w.d`, plus the local time of day of the change, which may be negative or past 24 h.
  struct rule_day {
    enum form_t { julian, zero_based, month_week_day } form = month_week_day;
    int month = 0;
    int week = 0;
    int day = 0;
    std::int32_t time_s = 7200;
  };

  // A POSIX TZ string such as `EST5EDT,M3.2.0,M11.1.0`, offsets already east-positive.
  struct tz_rule {
    std::int32_t std_offset = 0;
    bool has_dst = false;
    std::int32_t dst_offset = 0;
    rule_day start;
    rule_day end;
  };

  struct change {
    std::int64_t at;
    std::int32_t offset;
  };

  zone() = default;

  static std::optional<tz_rule> parse_rule(std::string_view text);
  std::int32_t rule_offset_at(std::int64_t utc_s) const;
  // The rule's changes in the years around `utc_s`, sorted.
  std::vector<change> rule_changes_near(std::int64_t utc_s) const;
  // The first instant after `utc_s` at which a transition or rule change takes effect.
  std::optional<std::int64_t> next_change(std::int64_t utc_s) const;

  std::string name_;
  std::vector<std::int64_t> transitions_; // ascending
  std::vector<std::int32_t> offsets_;     // the offset from transitions_[i] on
  std::int32_t initial_offset_ = 0;       // before the first transition: type 0
  std::optional<tz_rule> rule_;           // the footer, if any
};

/// The zone called `name` from the default root, read once and then shared: a mutex-guarded
/// process-wide cache keyed by name. Failures are not cached. Thread-safe; blocking on a miss.
[[nodiscard]] std::shared_ptr<const zone> cached(std::string_view name,
                                                 std::string* error = nullptr);

} // namespace troupe::protocol::zoneinfo

#define CAF_SUITE protocol.zoneinfo

#include "protocol/zoneinfo.hpp"

#include <caf/test/unit_test.hpp>

#include <ctime>
#include <string>
#include <vector>

using namespace troupe::protocol;
using zoneinfo::zone;

// Every expected offset and instant below was computed independently with Python's zoneinfo
// module (reading the same /usr/share/zoneinfo, or the TZif bytes built here through
// ZoneInfo.from_file) or with glibc's `date`, never with the code under test. Instants are
// written as UTC civil times and converted with glibc's timegm; local civil times (the input
// of resolve) use the same conversion, as they count seconds from 1970-01-01T00:00 local.

namespace {

std::int64_t civil(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(timegm(&tm));
}

zone load(const char* name) {
  std::string error;
  auto z = zone::load(name, &error);
  if (!z) {
    CAF_FAIL("cannot load " << name << ": " << error);
  }
  return std::move(*z);
}

std::string load_error(std::string_view name) {
  std::string error;
  auto z = zone::load(name, &error);
  CAF_CHECK(!z.has_value());
  return error;
}

std::string big_endian(std::uint64_t value, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
  return out;
}

// The parts of a TZif data block that matter here.
struct tzif_data {
  std::vector<std::int64_t> times;
  std::vector<unsigned char> types;
  std::vector<std::int32_t> offsets;
  std::uint32_t leapcnt = 0;
};

// A header and data block (RFC 8536 sections 3.1 and 3.2) with `time_size`-byte times.
std::string block(char version, const tzif_data& d, int time_size) {
  std::string out = "TZif";
  out.push_back(version);
  out.append(15, '\0');
  out += big_endian(0, 4); // isutcnt
  out += big_endian(0, 4); // isstdcnt
  out += big_endian(d.leapcnt, 4);
  out += big_endian(d.times.size(), 4);
  out += big_endian(d.offsets.size(), 4);
  out += big_endian(4, 4); // charcnt
  for (auto t : d.times) {
    out += big_endian(static_cast<std::uint64_t>(t), time_size);
  }
  for (auto type : d.types) {
    out.push_back(static_cast<char>(type));
  }
  for (auto offset : d.offsets) {
    out += big_endian(static_cast<std::uint32_t>(offset), 4);
    out.append(2, '\0'); // isdst, desigidx
  }
  out.append(std::string("XXX\0", 4));
  out.append(static_cast<std::size_t>(d.leapcnt) * (time_size + 4), '\0');
  return out;
}

std::string tzif_v1(const tzif_data& d) {
  return block('\0', d, 4);
}

// A version 2 file whose 32-bit block holds one type of offset `v1_offset` and no
// transitions, followed by `d` with 64-bit times and the footer.
std::string tzif_v2(const tzif_data& d, const std::string& footer, std::int32_t v1_offset = 0) {
  return block('2', tzif_data{{}, {}, {v1_offset}}, 4) + block('2', d, 8) + "\n" + footer + "\n";
}

// A zone governed by the POSIX TZ string `footer` alone.
zone footer_zone(const std::string& footer) {
  std::string error;
  auto z = zone::parse("test", tzif_v2(tzif_data{{}, {}, {0}}, footer), &error);
  if (!z) {
    CAF_FAIL("cannot parse footer " << footer << ": " << error);
  }
  return std::move(*z);
}

// The offsets just before and at `at`.
std::pair<std::int32_t, std::int32_t> around(const zone& z, std::int64_t at) {
  return {z.offset_at(at - 1), z.offset_at(at)};
}

// The name and the verdict, so a failed check says which name it was.
std::string judged(std::string_view name) {
  return std::string{name} + (zoneinfo::valid_name(name) ? " valid" : " invalid");
}

using offsets = std::pair<std::int32_t, std::int32_t>;

const char* kind_name(zone::resolution::kind_t kind) {
  switch (kind) {
  case zone::resolution::unique:
    return "unique";
  case zone::resolution::gap:
    return "gap";
  case zone::resolution::ambiguous:
    return "ambiguous";
  }
  return "?";
}

} // namespace

CAF_TEST(zone names are limited to safe relative paths) {
  for (auto name : {"UTC", "Etc/UTC", "America/New_York", "America/Argentina/Buenos_Aires",
                    "Etc/GMT+5", "Etc/GMT-14", "EST5EDT"}) {
    CAF_CHECK_EQUAL(judged(name), std::string{name} + " valid");
  }
  for (auto name : {"", "/etc/passwd", "../etc/passwd", "America/../UTC", "./UTC", "America/.",
                    "America//New_York", "America/", "a b", "UTC\n", "zone.tab",
                    "America\\New_York", "Europe/Berlin;rm"}) {
    CAF_CHECK_EQUAL(judged(name), std::string{name} + " invalid");
  }
  CAF_CHECK(zoneinfo::valid_name(std::string(255, 'A')));
  CAF_CHECK(!zoneinfo::valid_name(std::string(256, 'A')));
  CAF_CHECK(!zoneinfo::valid_name(std::string("UTC\0x", 5)));
}

CAF_TEST(loading refuses bad names and unknown zones with a reason) {
  CAF_CHECK_EQUAL(load_error("../etc/passwd"), "invalid time zone name");
  CAF_CHECK_EQUAL(load_error("/etc/passwd"), "invalid time zone name");
  CAF_CHECK_EQUAL(load_error(""), "invalid time zone name");
  CAF_CHECK_EQUAL(load_error("Nope/Nowhere"), "unknown time zone Nope/Nowhere");
  CAF_CHECK(!load_error("America").empty());          // a directory
  CAF_CHECK(!zone::load("Nope/Nowhere").has_value()); // no error pointer: no crash
}

CAF_TEST(UTC and Etc UTC have offset zero everywhere) {
  for (auto name : {"UTC", "Etc/UTC"}) {
    auto z = load(name);
    CAF_CHECK_EQUAL(z.name(), name);
    for (auto t : {civil(1900, 1, 1), civil(2026, 7, 1), civil(2100, 1, 1)}) {
      CAF_CHECK_EQUAL(z.offset_at(t), 0);
      const auto r = z.resolve(t);
      CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"unique"});
      CAF_CHECK_EQUAL(r.first, t);
      CAF_CHECK_EQUAL(r.second, t);
    }
  }
}

CAF_TEST(New York changes offset at its 2026 transitions) {
  auto z = load("America/New_York");
  CAF_CHECK_EQUAL(around(z, civil(2026, 3, 8, 7)), offsets(-18000, -14400));
  CAF_CHECK_EQUAL(around(z, civil(2026, 11, 1, 6)), offsets(-14400, -18000));
  CAF_CHECK_EQUAL(z.offset_at(civil(2026, 1, 15)), -18000);
  CAF_CHECK_EQUAL(z.offset_at(civil(2026, 7, 15)), -14400);
}

CAF_TEST(the footer rule governs New York after the last transition in the file) {
  auto z = load("America/New_York");
  CAF_CHECK_EQUAL(z.offset_at(civil(2040, 7, 1)), -14400);
  CAF_CHECK_EQUAL(z.offset_at(civil(2040, 1, 15)), -18000);
  CAF_CHECK_EQUAL(around(z, civil(2040, 3, 11, 7)), offsets(-18000, -14400));
  CAF_CHECK_EQUAL(around(z, civil(2040, 11, 4, 6)), offsets(-14400, -18000));
}

CAF_TEST(local time type 0 applies before the first transition) {
  CAF_CHECK_EQUAL(load("America/New_York").offset_at(civil(1800, 1, 1)), -17762); // LMT
}

CAF_TEST(Kolkata is five and a half hours ahead) {
  auto z = load("Asia/Kolkata");
  CAF_CHECK_EQUAL(z.offset_at(civil(2026, 6, 1)), 19800);
  CAF_CHECK_EQUAL(z.offset_at(civil(2026, 12, 1)), 19800);
}

CAF_TEST(Berlin Sydney Dublin and Nuuk change at the right instants) {
  auto berlin = load("Europe/Berlin");
  CAF_CHECK_EQUAL(around(berlin, civil(2026, 3, 29, 1)), offsets(3600, 7200));
  CAF_CHECK_EQUAL(around(berlin, civil(2026, 10, 25, 1)), offsets(7200, 3600));
  auto sydney = load("Australia/Sydney");
  CAF_CHECK_EQUAL(around(sydney, civil(2026, 4, 4, 16)), offsets(39600, 36000));
  CAF_CHECK_EQUAL(around(sydney, civil(2026, 10, 3, 16)), offsets(36000, 39600));
  // Dublin's footer has negative daylight saving time: IST-1GMT0,M10.5.0,M3.5.0/1.
  auto dublin = load("Europe/Dublin");
  CAF_CHECK_EQUAL(dublin.offset_at(civil(2040, 1, 15)), 0);
  CAF_CHECK_EQUAL(dublin.offset_at(civil(2040, 7, 15)), 3600);
  CAF_CHECK_EQUAL(around(dublin, civil(2040, 3, 25, 1)), offsets(0, 3600));
  CAF_CHECK_EQUAL(around(dublin, civil(2040, 10, 28, 1)), offsets(3600, 0));
  // Nuuk's footer has a negative transition hour: <-02>2<-01>,M3.5.0/-1,M10.5.0/0.
  auto nuuk = load("America/Nuuk");
  CAF_CHECK_EQUAL(around(nuuk, civil(2040, 3, 25, 1)), offsets(-7200, -3600));
  CAF_CHECK_EQUAL(around(nuuk, civil(2040, 10, 28, 1)), offsets(-3600, -7200));
}

CAF_TEST(resolve tells unique gap and ambiguous local times apart) {
  auto ny = load("America/New_York");
  auto r = ny.resolve(civil(2026, 7, 1, 12));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"unique"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 7, 1, 16));
  CAF_CHECK_EQUAL(r.second, civil(2026, 7, 1, 16));
  // 02:30 on 2026-03-08 does not happen: the clocks go from 02:00 EST to 03:00 EDT at 07:00Z.
  r = ny.resolve(civil(2026, 3, 8, 2, 30));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"gap"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 3, 8, 7));
  CAF_CHECK_EQUAL(r.second, civil(2026, 3, 8, 7));
  r = ny.resolve(civil(2026, 3, 8, 2, 0)); // the first second of the gap
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"gap"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 3, 8, 7));
  r = ny.resolve(civil(2026, 3, 8, 3, 0)); // the first second after it
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"unique"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 3, 8, 7));
  r = ny.resolve(civil(2026, 3, 8, 1, 59, 59));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"unique"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 3, 8, 6, 59, 59));
  // 01:30 on 2026-11-01 happens twice: 05:30Z (EDT) and 06:30Z (EST).
  r = ny.resolve(civil(2026, 11, 1, 1, 30));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"ambiguous"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 11, 1, 5, 30));
  CAF_CHECK_EQUAL(r.second, civil(2026, 11, 1, 6, 30));
  r = ny.resolve(civil(2026, 11, 1, 2, 0));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"unique"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 11, 1, 7));

  auto berlin = load("Europe/Berlin");
  r = berlin.resolve(civil(2026, 3, 29, 2, 30));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"gap"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 3, 29, 1));
  r = berlin.resolve(civil(2026, 10, 25, 2, 30));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"ambiguous"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 10, 25, 0, 30));
  CAF_CHECK_EQUAL(r.second, civil(2026, 10, 25, 1, 30));

  // Lord Howe moves by 30 minutes.
  auto lord_howe = load("Australia/Lord_Howe");
  r = lord_howe.resolve(civil(2026, 4, 5, 1, 45));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"ambiguous"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 4, 4, 14, 45));
  CAF_CHECK_EQUAL(r.second, civil(2026, 4, 4, 15, 15));
  r = lord_howe.resolve(civil(2026, 10, 4, 2, 15));
  CAF_CHECK_EQUAL(kind_name(r.kind), std::string{"gap"});
  CAF_CHECK_EQUAL(r.first, civil(2026, 10, 3, 15, 30));
}

CAF_TEST(footer rules cover every POSIX TZ form) {
  // Negative transition hour (Nuuk).
  auto z = footer_zone("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
  CAF_CHECK_EQUAL(around(z, civil(2030, 3, 31, 1)), offsets(-7200, -3600));
  CAF_CHECK_EQUAL(around(z, civil(2030, 10, 27, 1)), offsets(-3600, -7200));
  CAF_CHECK_EQUAL(around(z, civil(2032, 3, 28, 1)), offsets(-7200, -3600));
  // Negative daylight saving time (Dublin).
  z = footer_zone("IST-1GMT0,M10.5.0,M3.5.0/1");
  CAF_CHECK_EQUAL(around(z, civil(2030, 3, 31, 1)), offsets(0, 3600));
  CAF_CHECK_EQUAL(around(z, civil(2030, 10, 27, 1)), offsets(3600, 0));
  // Jn never counts February 29, n does. For the zero-based n, Python's zoneinfo is a day early
  // (it reads day 300 as October 27 in 2030); these instants are glibc's instead
  // (TZ='XXX3YYY,J60/2,300/3' date -d @... says October 28, and October 27 in 2032).
  z = footer_zone("XXX3YYY,J60/2,300/3");
  CAF_CHECK_EQUAL(around(z, civil(2030, 3, 1, 5)), offsets(-10800, -7200));
  CAF_CHECK_EQUAL(around(z, civil(2030, 10, 28, 5)), offsets(-7200, -10800));
  CAF_CHECK_EQUAL(around(z, civil(2032, 3, 1, 5)), offsets(-10800, -7200));
  CAF_CHECK_EQUAL(around(z, civil(2032, 10, 27, 5)), offsets(-7200, -10800));
  // Hours up to 167 either way.
  z = footer_zone("EST5EDT,M3.2.0/167,M11.1.0/-167");
  CAF_CHECK_EQUAL(around(z, civil(2030, 3, 17, 4)), offsets(-18000, -14400));
  CAF_CHECK_EQUAL(around(z, civil(2030, 10, 27, 5)), offsets(-14400, -18000));
  // Southern hemisphere.
  z = footer_zone("AAA-10BBB,M10.1.0,M4.1.0/3");
  CAF_CHECK_EQUAL(around(z, civil(2030, 4, 6, 16)), offsets(39600, 36000));
  CAF_CHECK_EQUAL(around(z, civil(2030, 10, 5, 16)), offsets(36000, 39600));
  // Permanent daylight saving time.
  z = footer_zone("EST5EDT4,0/0,J365/25");
  for (auto t : {civil(2030, 1, 1), civil(2030, 12, 31, 23, 59, 59), civil(2031, 1, 1, 5),
                 civil(2032, 7, 1)}) {
    CAF_CHECK_EQUAL(z.offset_at(t), -14400);
  }
  // Fixed offsets with minutes.
  z = footer_zone("<+0330>-3:30");
  CAF_CHECK_EQUAL(z.offset_at(civil(2030, 1, 1)), 12600);
  CAF_CHECK_EQUAL(z.offset_at(civil(2030, 7, 1)), 12600);
  // No rule: the United States' (glibc: TZ=XST5XDT date -d @1899356400 +%z says -0400).
  z = footer_zone("XST5XDT");
  CAF_CHECK_EQUAL(around(z, civil(2030, 3, 10, 7)), offsets(-18000, -14400));
}

CAF_TEST(version 1 files use their 32 bit data without a footer) {
  const tzif_data d{{civil(2000, 1, 1), civil(2010, 1, 1)}, {1, 0}, {3600, 7200}};
  std::string error;
  auto z = zone::parse("v1", tzif_v1(d), &error);
  CAF_REQUIRE_EQUAL(error, "");
  CAF_REQUIRE(z.has_value());
  CAF_CHECK_EQUAL(z->name(), "v1");
  CAF_CHECK_EQUAL(z->offset_at(civil(1990, 1, 1)), 3600); // type 0 before the first transition
  CAF_CHECK_EQUAL(z->offset_at(civil(2000, 1, 1)), 7200);
  CAF_CHECK_EQUAL(z->offset_at(civil(2010, 1, 1) - 1), 7200);
  CAF_CHECK_EQUAL(z->offset_at(civil(2010, 1, 1)), 3600);
  CAF_CHECK_EQUAL(z->offset_at(civil(2100, 1, 1)), 3600); // the last type from then on
}

CAF_TEST(version 2 files use the 64 bit block) {
  const tzif_data d{{civil(1800, 1, 1)}, {1}, {-3600, 5400}};
  auto z = zone::parse("v2", tzif_v2(d, "", 9999));
  CAF_REQUIRE(z.has_value());
  CAF_CHECK_EQUAL(z->offset_at(civil(1700, 1, 1)), -3600);
  CAF_CHECK_EQUAL(z->offset_at(civil(1800, 1, 1)), 5400); // before 1901: needs 64-bit times
  CAF_CHECK_EQUAL(z->offset_at(civil(2200, 1, 1)), 5400);
}

CAF_TEST(malformed TZif data is refused with a reason) {
  auto refused = [](const std::string& data) {
    std::string error;
    auto z = zone::parse("bad", data, &error);
    CAF_CHECK(!z.has_value());
    return error;
  };
  const tzif_data good{{civil(2000, 1, 1)}, {0}, {0}};
  CAF_CHECK_EQUAL(refused(""), "not a TZif file");
  CAF_CHECK_EQUAL(refused("TZif2"), "not a TZif file");
  CAF_CHECK_EQUAL(refused("XXif" + tzif_v1(good).substr(4)), "not a TZif file");
  CAF_CHECK_EQUAL(refused("TZif9" + tzif_v1(good).substr(5)), "unsupported TZif version");
  CAF_CHECK_EQUAL(refused(tzif_v1(good).substr(0, 50)), "truncated TZif file");
  CAF_CHECK_EQUAL(refused(tzif_v1(tzif_data{{}, {}, {}})), "malformed TZif header");
  auto leap = good;
  leap.leapcnt = 1;
  CAF_CHECK_EQUAL(refused(tzif_v1(leap)), "TZif files with leap seconds are not supported");
  CAF_CHECK_EQUAL(refused(tzif_v1(tzif_data{{10, 10}, {0, 0}, {0}})),
                  "TZif transitions are not in ascending order");
  CAF_CHECK_EQUAL(refused(tzif_v1(tzif_data{{10}, {1}, {0}})),
                  "TZif transition refers to a missing local time type");
  CAF_CHECK_EQUAL(refused(tzif_v1(tzif_data{{}, {}, {93600}})),
                  "TZif local time type has an offset out of range");
  CAF_CHECK_EQUAL(refused(tzif_v1(tzif_data{{}, {}, {-90000}})),
                  "TZif local time type has an offset out of range");
  CAF_CHECK(zone::parse("edge", tzif_v1(tzif_data{{}, {}, {93599}})).has_value());
  const auto v2 = tzif_v2(good, "EST5EDT");
  CAF_CHECK_EQUAL(refused(v2.substr(0, v2.size() - 1)), "TZif footer is missing");
  for (auto footer : {"EST5EDT,M13.1.0,M11.1.0", "EST", "EST5EDT,M3.2.0", "EST25", "5EST",
                      "EST5EDT,M3.2.0/168,M11.1.0", "EST5EDT,J0,J365", "EST5EDT,366,0", "<>5",
                      "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,M3.2.7,M11.1.0", "EST5x"}) {
    CAF_CHECK_EQUAL(refused(tzif_v2(good, footer)),
                    "TZif footer '" + std::string{footer} + "' is not a TZ string we understand");
  }
}

CAF_TEST(zones are cached by name) {
  auto first = zoneinfo::cached("Europe/Berlin");
  auto second = zoneinfo::cached("Europe/Berlin");
  CAF_REQUIRE(first != nullptr);
  CAF_CHECK_EQUAL(first.get(), second.get());
  CAF_CHECK_EQUAL(first->name(), "Europe/Berlin");
  std::string error;
  CAF_CHECK(zoneinfo::cached("../etc/passwd", &error) == nullptr);
  CAF_CHECK_EQUAL(error, "invalid time zone name");
  CAF_CHECK(zoneinfo::cached("Nope/Nowhere", &error) == nullptr);
  CAF_CHECK_EQUAL(error, "unknown time zone Nope/Nowhere");
}

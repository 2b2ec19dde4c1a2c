#define CAF_SUITE actors.password_hasher

#include "actors/auth/password_hasher.hpp"

#include "protocol/error.hpp"
#include "protocol/type_ids.hpp"

#include "tests/support/actor_fixture.hpp"

#include <argon2.h>
#include <caf/all.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// Cheap parameters (256 KiB, one pass): the unit tier stays fast.
const actors::argon2_params small{256, 1, 1};

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string::size_type begin = 0;
  for (;;) {
    const auto end = text.find(separator, begin);
    parts.push_back(text.substr(begin, end - begin));
    if (end == std::string::npos) {
      return parts;
    }
    begin = end + 1;
  }
}

std::string prefix(const actors::argon2_params& params) {
  return "$argon2id$v=19$m=" + std::to_string(params.memory_kib) + ",t="
         + std::to_string(params.iterations) + ",p=" + std::to_string(params.parallelism) + "$";
}

bool starts_with(const std::string& text, const std::string& start) {
  return text.rfind(start, 0) == 0;
}

std::string hex(const std::uint8_t* data, std::size_t size) {
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    char byte[3];
    std::snprintf(byte, sizeof byte, "%02x", data[i]);
    text += byte;
  }
  return text;
}

// The hasher's answers as seen by a requester: the PHC string or the error's code.
struct hash_reply {
  std::string encoded;
  caf::error err;
};

struct verify_reply {
  bool matches = false;
  caf::error err;
};

template <class Handle>
hash_reply receive_hash(Handle&& handle) {
  hash_reply reply;
  handle.receive([&](std::string& encoded) { reply.encoded = std::move(encoded); },
                 [&](caf::error& err) { reply.err = std::move(err); });
  return reply;
}

template <class Handle>
verify_reply receive_verify(Handle&& handle) {
  verify_reply reply;
  handle.receive([&](bool matches) { reply.matches = matches; },
                 [&](caf::error& err) { reply.err = std::move(err); });
  return reply;
}

bool is_errc(const caf::error& err, protocol::errc code) {
  return err && protocol::to_errc(err) == code;
}

// A real actor system: the workers are detached and need real threads.
struct live_fixture {
  tests::test_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;

  live_fixture() : sys(init(cfg)), self(sys) {}

  static tests::test_config& init(tests::test_config& config) {
    config.set("scheduler.max-threads", 2);
    return config;
  }

  hash_reply hash(const actors::password_hasher_actor& hasher, const std::string& password) {
    return receive_hash(self->request(hasher, 10s, protocol::hash_atom_v, password));
  }

  verify_reply verify(const actors::password_hasher_actor& hasher, const std::string& password,
                      const std::string& encoded) {
    return receive_verify(self->request(hasher, 10s, protocol::verify_atom_v, password, encoded));
  }

  void stop(const actors::password_hasher_actor& hasher) {
    self->send_exit(hasher, caf::exit_reason::user_shutdown);
  }
};

} // namespace

CAF_TEST(a hash is an argon2id PHC string with its parameters a salt and a 32 byte hash) {
  const auto encoded = actors::hash_password("correct horse", small);
  CAF_CHECK(starts_with(encoded, "$argon2id$v=19$m=256,t=1,p=1$"));
  const auto parts = split(encoded, '$');
  CAF_REQUIRE_EQUAL(parts.size(), 6u);
  CAF_CHECK_EQUAL(parts[0], "");
  CAF_CHECK_EQUAL(parts[1], "argon2id");
  CAF_CHECK_EQUAL(parts[2], "v=19");
  CAF_CHECK_EQUAL(parts[4].size(), 22u); // 16 bytes in unpadded base64
  CAF_CHECK_EQUAL(parts[5].size(), 43u); // 32 bytes in unpadded base64
}

CAF_TEST(two hashes of the same password differ by their salt) {
  const auto first = actors::hash_password("same", small);
  const auto second = actors::hash_password("same", small);
  CAF_CHECK_NOT_EQUAL(first, second);
  const auto first_parts = split(first, '$');
  const auto second_parts = split(second, '$');
  CAF_REQUIRE_EQUAL(first_parts.size(), 6u);
  CAF_REQUIRE_EQUAL(second_parts.size(), 6u);
  CAF_CHECK_NOT_EQUAL(first_parts[4], second_parts[4]); // the salts
  CAF_CHECK(actors::verify_password("same", first));
  CAF_CHECK(actors::verify_password("same", second));
}

CAF_TEST(verify accepts the password and rejects any other) {
  const auto encoded = actors::hash_password("p\xC3\xA4ssw\xC3\xB6rd", small);
  CAF_CHECK(actors::verify_password("p\xC3\xA4ssw\xC3\xB6rd", encoded));
  CAF_CHECK(!actors::verify_password("password", encoded));
  CAF_CHECK(!actors::verify_password("p\xC3\xA4ssw\xC3\xB6rd ", encoded));
  CAF_CHECK(!actors::verify_password("", encoded));
  const auto empty = actors::hash_password("", small);
  CAF_CHECK(actors::verify_password("", empty));
  CAF_CHECK(!actors::verify_password(std::string(1, '\0'), empty));
}

CAF_TEST(verify is false for malformed empty and other algorithms strings) {
  const auto good = actors::hash_password("pw", small);
  CAF_REQUIRE(actors::verify_password("pw", good));
  std::array<char, 128> argon2i{};
  CAF_REQUIRE_EQUAL(argon2i_hash_encoded(1, 256, 1, "pw", 2, "saltsaltsaltsalt", 16, 32,
                                         argon2i.data(), argon2i.size()),
                    ARGON2_OK);
  std::array<char, 128> argon2d{};
  CAF_REQUIRE_EQUAL(argon2d_hash_encoded(1, 256, 1, "pw", 2, "saltsaltsaltsalt", 16, 32,
                                         argon2d.data(), argon2d.size()),
                    ARGON2_OK);
  auto flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  const std::vector<std::string> bad = {
    "",
    "pw",
    "$argon2id$",
    good.substr(0, good.size() - 10),
    good.substr(0, good.rfind('$')),
    good + "AAAA",
    flipped,
    argon2i.data(),
    argon2d.data(),
    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
    "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$!!!!",
    "$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$c2FsdHNhbHRzYWx0c2FsdA",
  };
  for (const auto& encoded : bad) {
    CAF_MESSAGE("encoded: " << encoded);
    CAF_CHECK(!actors::verify_password("pw", encoded));
  }
}

CAF_TEST(the parameters round trip through the string) {
  const actors::argon2_params params{512, 3, 2};
  const auto encoded = actors::hash_password("round trip", params);
  CAF_CHECK(starts_with(encoded, prefix(params)));
  const auto parts = split(encoded, '$');
  CAF_REQUIRE_EQUAL(parts.size(), 6u);
  CAF_CHECK_EQUAL(parts[3], "m=512,t=3,p=2");
  // verify reads them back from the string: no parameters are passed.
  CAF_CHECK(actors::verify_password("round trip", encoded));
  CAF_CHECK(!actors::verify_password("round trap", encoded));
}

CAF_TEST(parameters argon2 refuses give an empty hash) {
  // argon2 needs at least 8 KiB per lane.
  CAF_CHECK_EQUAL(actors::hash_password("pw", {8, 1, 2}), "");
}

CAF_TEST(libargon2 computes the RFC 9106 argon2id test vector) {
  // RFC 9106 section 5.3: password 32 x 0x01, salt 16 x 0x02, secret 8 x 0x03, associated
  // data 12 x 0x04, m=32 KiB, t=3, p=4, version 0x13, 32-byte tag.
  std::array<std::uint8_t, 32> password{};
  password.fill(0x01);
  std::array<std::uint8_t, 16> salt{};
  salt.fill(0x02);
  std::array<std::uint8_t, 8> secret{};
  secret.fill(0x03);
  std::array<std::uint8_t, 12> ad{};
  ad.fill(0x04);
  std::array<std::uint8_t, 32> tag{};
  argon2_context ctx{};
  ctx.out = tag.data();
  ctx.outlen = tag.size();
  ctx.pwd = password.data();
  ctx.pwdlen = password.size();
  ctx.salt = salt.data();
  ctx.saltlen = salt.size();
  ctx.secret = secret.data();
  ctx.secretlen = secret.size();
  ctx.ad = ad.data();
  ctx.adlen = ad.size();
  ctx.t_cost = 3;
  ctx.m_cost = 32;
  ctx.lanes = 4;
  ctx.threads = 1; // the tag does not depend on the number of threads
  ctx.version = ARGON2_VERSION_13;
  CAF_REQUIRE_EQUAL(argon2_ctx(&ctx, Argon2_id), ARGON2_OK);
  CAF_CHECK_EQUAL(hex(tag.data(), tag.size()),
                  "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
}

CAF_TEST(the dummy hash matches no password and is computed once) {
  const auto& dummy = actors::dummy_hash(small);
  CAF_CHECK(starts_with(dummy, prefix(small)));
  CAF_CHECK_EQUAL(&actors::dummy_hash(small), &dummy);
  CAF_CHECK_EQUAL(actors::dummy_hash(small), dummy);
  for (const auto* password : {"", "password", "123456", "$argon2id$"}) {
    CAF_CHECK(!actors::verify_password(password, dummy));
  }
  CAF_CHECK(!actors::verify_password(dummy, dummy));
  const actors::argon2_params other{512, 1, 1};
  CAF_CHECK(starts_with(actors::dummy_hash(other), prefix(other)));
  CAF_CHECK_EQUAL(&actors::dummy_hash(small), &dummy);
}

CAF_TEST(the OWASP defaults hash and verify) {
  const actors::argon2_params defaults;
  CAF_CHECK_EQUAL(defaults.memory_kib, 19456u);
  CAF_CHECK_EQUAL(defaults.iterations, 2u);
  CAF_CHECK_EQUAL(defaults.parallelism, 1u);
  const auto start = std::chrono::steady_clock::now();
  const auto encoded = actors::hash_password("owasp", defaults);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CAF_MESSAGE("one hash with the defaults took "
              << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() / 1000.0
              << " ms");
  CAF_CHECK(starts_with(encoded, "$argon2id$v=19$m=19456,t=2,p=1$"));
  CAF_CHECK(actors::verify_password("owasp", encoded));
}

// The dispatcher's queue on the deterministic scheduler. The worker threads are real, but a
// worker's answer lands in the dispatcher's mailbox behind every message sent before the
// scheduler ran, so what the dispatcher decides for those is fixed.
CAF_TEST_FIXTURE_SCOPE(password_hasher_dispatch_tests, tests::actor_fixture)

CAF_TEST(a job that would make more than queue_limit wait is refused at once) {
  auto hasher = actors::spawn_password_hasher(sys, small, 1, 1);
  sched.run();
  auto first = self->request(hasher, caf::infinite, protocol::hash_atom_v, std::string{"a"});
  auto second = self->request(hasher, caf::infinite, protocol::verify_atom_v, std::string{"b"},
                              actors::dummy_hash(small));
  auto third = self->request(hasher, caf::infinite, protocol::hash_atom_v, std::string{"c"});
  auto fourth = self->request(hasher, caf::infinite, protocol::verify_atom_v, std::string{"d"},
                              actors::dummy_hash(small));
  self->send_exit(hasher, caf::exit_reason::kill); // lets the test end without waiting
  sched.run();
  const auto refused_hash = receive_hash(third);
  CAF_CHECK(is_errc(refused_hash.err, protocol::errc::service_unavailable));
  CAF_CHECK_EQUAL(refused_hash.encoded, "");
  CAF_CHECK(is_errc(receive_verify(fourth).err, protocol::errc::service_unavailable));
  receive_hash(first);
  receive_verify(second);
}

CAF_TEST(jobs the hasher still holds when it exits fail with service_unavailable) {
  auto hasher = actors::spawn_password_hasher(sys, small, 1, 4);
  sched.run();
  auto running = self->request(hasher, caf::infinite, protocol::hash_atom_v, std::string{"a"});
  auto waiting_hash = self->request(hasher, caf::infinite, protocol::hash_atom_v, std::string{"b"});
  auto waiting_verify = self->request(hasher, caf::infinite, protocol::verify_atom_v,
                                      std::string{"c"}, actors::dummy_hash(small));
  self->send_exit(hasher, caf::exit_reason::kill);
  sched.run();
  CAF_CHECK(is_errc(receive_hash(running).err, protocol::errc::service_unavailable));
  CAF_CHECK(is_errc(receive_hash(waiting_hash).err, protocol::errc::service_unavailable));
  CAF_CHECK(is_errc(receive_verify(waiting_verify).err, protocol::errc::service_unavailable));
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(password_hasher_live_tests, live_fixture)

CAF_TEST(the hasher hashes and verifies on its workers) {
  auto hasher = actors::spawn_password_hasher(sys, small, 2);
  const auto hashed = hash(hasher, "secret");
  CAF_REQUIRE(!hashed.err);
  CAF_CHECK(starts_with(hashed.encoded, prefix(small)));
  CAF_CHECK(actors::verify_password("secret", hashed.encoded));
  const auto right = verify(hasher, "secret", hashed.encoded);
  CAF_CHECK(!right.err);
  CAF_CHECK(right.matches);
  const auto wrong = verify(hasher, "Secret", hashed.encoded);
  CAF_CHECK(!wrong.err);
  CAF_CHECK(!wrong.matches);
  const auto malformed = verify(hasher, "secret", "$argon2id$nonsense");
  CAF_CHECK(!malformed.err);
  CAF_CHECK(!malformed.matches);
  stop(hasher);
}

CAF_TEST(eight concurrent jobs on two workers all complete) {
  auto hasher = actors::spawn_password_hasher(sys, small, 2, 8);
  using handle = decltype(self->request(hasher, 10s, protocol::hash_atom_v, std::string{}));
  std::vector<handle> pending;
  pending.reserve(8);
  for (int i = 0; i < 8; ++i) {
    pending.push_back(self->request(hasher, 10s, protocol::hash_atom_v, "pw" + std::to_string(i)));
  }
  for (int i = 0; i < 8; ++i) {
    const auto reply = receive_hash(pending[static_cast<std::size_t>(i)]);
    CAF_CHECK(!reply.err);
    CAF_CHECK(actors::verify_password("pw" + std::to_string(i), reply.encoded));
  }
  stop(hasher);
}

CAF_TEST(a parent actor can spawn the hasher) {
  auto hasher = actors::spawn_password_hasher(self.ptr(), small, 1);
  const auto hashed = hash(hasher, "from a parent");
  CAF_REQUIRE(!hashed.err);
  CAF_CHECK(verify(hasher, "from a parent", hashed.encoded).matches);
  stop(hasher);
}

CAF_TEST(a hash argon2 refuses is an internal error and the hasher keeps serving) {
  auto hasher = actors::spawn_password_hasher(sys, {8, 1, 2}, 1);
  CAF_CHECK(is_errc(hash(hasher, "pw").err, protocol::errc::internal));
  const auto encoded = actors::hash_password("pw", small);
  CAF_CHECK(verify(hasher, "pw", encoded).matches);
  stop(hasher);
}

CAF_TEST_FIXTURE_SCOPE_END()

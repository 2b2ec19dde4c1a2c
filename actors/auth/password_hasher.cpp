#include "actors/auth/password_hasher.hpp"

#include "protocol/error.hpp"

#include <argon2.h>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <caf/spawn_options.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstring> // explicit_bzero (glibc)
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <sys/random.h>
#include <tuple>
#include <variant>
#include <vector>

namespace troupe::actors {

namespace {

constexpr std::size_t salt_bytes = 16;
constexpr std::size_t hash_bytes = 32;

// Overwrites the characters of a password copy we own; explicit_bzero is not optimised away
// like a plain fill of a string about to die may be.
void wipe(std::string& text) {
  explicit_bzero(text.data(), text.size());
  text.clear();
}

bool fill_random(unsigned char* out, std::size_t size) {
  while (size > 0) {
    const auto got = getrandom(out, size, 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    out += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

// A worker is detached: the blocking argon2 call gets a thread to itself.

password_hasher_actor::behavior_type worker(password_hasher_actor::pointer, argon2_params params) {
  return {
    [params](protocol::hash_atom, std::string& password) -> caf::result<std::string> {
      auto encoded = hash_password(password, params);
      wipe(password);
      if (encoded.empty()) {
        return caf::make_error(protocol::errc::internal);
      }
      return encoded;
    },
    [](protocol::verify_atom, std::string& password, const std::string& encoded) {
      const bool matches = verify_password(password, encoded);
      wipe(password);
      return matches;
    },
  };
}

// The dispatcher keeps a FIFO of jobs in front of the workers.

using hash_promise = caf::typed_response_promise<std::string>;
using verify_promise = caf::typed_response_promise<bool>;
using reply_promise = std::variant<hash_promise, verify_promise>;

void fail(reply_promise& promise, const caf::error& err) {
  if (auto* hash = std::get_if<hash_promise>(&promise)) {
    hash->deliver(err);
  } else if (auto* verify = std::get_if<verify_promise>(&promise)) {
    verify->deliver(err);
  }
}

struct waiting_job {
  std::string password;
  std::string encoded; // verify jobs only
  reply_promise reply;
};

struct worker_slot {
  password_hasher_actor handle;
  std::optional<reply_promise> current; // set while the worker runs a job
};

struct dispatcher_state {
  static inline const char* name = "password_hasher";
  std::vector<worker_slot> workers;
  std::deque<waiting_job> waiting;
  std::size_t queue_limit = 0;

  dispatcher_state() = default;
  dispatcher_state(const dispatcher_state&) = delete;
  dispatcher_state& operator=(const dispatcher_state&) = delete;

  // The dispatcher is exiting: nobody else will answer the jobs it holds.
  ~dispatcher_state() {
    const auto err = caf::make_error(protocol::errc::service_unavailable);
    for (auto& slot : workers) {
      if (slot.current) {
        fail(*slot.current, err);
      }
    }
    for (auto& job : waiting) {
      wipe(job.password);
      fail(job.reply, err);
    }
  }
};

using dispatcher_pointer = password_hasher_actor::stateful_pointer<dispatcher_state>;

std::optional<std::size_t> idle_worker(dispatcher_pointer self) {
  const auto& workers = self->state.workers;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (!workers[i].current) {
      return i;
    }
  }
  return std::nullopt;
}

reply_promise take_reply(dispatcher_pointer self, std::size_t index) {
  auto& slot = self->state.workers[index];
  assert(slot.current);
  auto reply = std::move(*slot.current);
  slot.current.reset();
  return reply;
}

void on_worker_done(dispatcher_pointer self, std::size_t index);

// Hands a job to the idle worker `index`. The request gets its own copy of the password;
// `password` is wiped.
void dispatch(dispatcher_pointer self, std::size_t index, std::string& password,
              const std::string& encoded, reply_promise reply) {
  auto& slot = self->state.workers[index];
  const auto on_error = [self, index](caf::error& err) {
    auto rp = take_reply(self, index);
    fail(rp, err);
    on_worker_done(self, index);
  };
  if (std::holds_alternative<hash_promise>(reply)) {
    self->request(slot.handle, caf::infinite, protocol::hash_atom_v, password)
      .then(
        [self, index](std::string& result) {
          std::get<hash_promise>(take_reply(self, index)).deliver(std::move(result));
          on_worker_done(self, index);
        },
        on_error);
  } else {
    self->request(slot.handle, caf::infinite, protocol::verify_atom_v, password, encoded)
      .then(
        [self, index](bool result) {
          std::get<verify_promise>(take_reply(self, index)).deliver(result);
          on_worker_done(self, index);
        },
        on_error);
  }
  wipe(password);
  slot.current = std::move(reply);
}

void on_worker_done(dispatcher_pointer self, std::size_t index) {
  auto& waiting = self->state.waiting;
  if (waiting.empty()) {
    return;
  }
  auto& job = waiting.front();
  dispatch(self, index, job.password, job.encoded, std::move(job.reply));
  waiting.pop_front();
}

// Starts or queues a job; refuses it if it would make more than queue_limit jobs wait.
template <class Result>
caf::result<Result> submit(dispatcher_pointer self, std::string& password,
                           const std::string& encoded) {
  const auto index = idle_worker(self);
  auto& st = self->state;
  if (!index && st.waiting.size() >= st.queue_limit) {
    wipe(password);
    return caf::make_error(protocol::errc::service_unavailable);
  }
  // Only now: making a promise takes over the reply, so a refusal above must come first.
  auto promise = self->make_response_promise<Result>();
  if (index) {
    dispatch(self, *index, password, encoded, promise);
  } else {
    auto& job = st.waiting.emplace_back();
    job.password = password; // a copy, not a move: a move may leave bytes behind
    job.encoded = encoded;
    job.reply = promise;
    wipe(password);
  }
  return promise;
}

password_hasher_actor::behavior_type dispatcher(dispatcher_pointer self, argon2_params params,
                                                std::size_t workers, std::size_t queue_limit) {
  assert(workers > 0);
  self->state.queue_limit = queue_limit;
  self->state.workers.resize(workers);
  for (auto& slot : self->state.workers) {
    slot.handle = self->spawn<caf::detached + caf::linked>(worker, params);
  }
  return {
    [self](protocol::hash_atom, std::string& password) {
      return submit<std::string>(self, password, std::string{});
    },
    [self](protocol::verify_atom, std::string& password, const std::string& encoded) {
      return submit<bool>(self, password, encoded);
    },
  };
}

} // namespace

std::string hash_password(std::string_view password, const argon2_params& params) {
  std::array<unsigned char, salt_bytes> salt{};
  if (!fill_random(salt.data(), salt.size())) {
    return {};
  }
  std::string encoded(argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
                                        salt_bytes, hash_bytes, Argon2_id),
                      '\0');
  const int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
                                       password.data(), password.size(), salt.data(), salt.size(),
                                       hash_bytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    return {};
  }
  encoded.resize(std::strlen(encoded.c_str())); // the buffer's size counts a terminating NUL
  return encoded;
}

bool verify_password(std::string_view password, const std::string& encoded) {
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

const std::string& dummy_hash(const argon2_params& params) {
  static std::mutex mutex;
  static std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint32_t>, std::string> hashes;
  static const std::string none;
  const auto key = std::make_tuple(params.memory_kib, params.iterations, params.parallelism);
  const std::lock_guard<std::mutex> lock{mutex};
  if (const auto i = hashes.find(key); i != hashes.end()) {
    return i->second;
  }
  std::array<unsigned char, 32> secret{};
  if (!fill_random(secret.data(), secret.size())) {
    return none;
  }
  auto encoded
    = hash_password({reinterpret_cast<const char*>(secret.data()), secret.size()}, params);
  explicit_bzero(secret.data(), secret.size());
  if (encoded.empty()) {
    return none; // not cached: the next call tries again
  }
  return hashes.emplace(key, std::move(encoded)).first->second; // map nodes never move
}

password_hasher_actor spawn_password_hasher(caf::actor_system& sys, argon2_params params,
                                            std::size_t workers, std::size_t queue_limit) {
  return sys.spawn(dispatcher, params, workers, queue_limit);
}

password_hasher_actor spawn_password_hasher(caf::local_actor* parent, argon2_params params,
                                            std::size_t workers, std::size_t queue_limit) {
  return parent->spawn(dispatcher, params, workers, queue_limit);
}

} // namespace troupe::actors

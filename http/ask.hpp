#pragma once

// The bridge from HTTP handlers to actors (option A of notes/caf-0.17.md section 8, chosen
// by measurement: see docs/performance.md). Include only in route .cpp files.

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <functional>
#include <utility>

namespace troupe::http {

/// How long a handler waits for an actor before answering 503.
inline constexpr std::chrono::milliseconds ask_timeout{5000};

namespace detail {

// The short-lived requester. It takes its inputs as spawn arguments: CAF 0.17.6 dereferences
// a null tuple pointer when a function actor is spawned without arguments (UBSan sees it).
template <class T, class Handle, class... Ts>
void ask_actor(caf::event_based_actor* self, Handle dest, std::chrono::milliseconds timeout,
               std::function<void(caf::expected<T>)> done, Ts... xs) {
  self->request(dest, timeout, std::move(xs)...)
    .then([done](T& result) { done(caf::expected<T>{std::move(result)}); },
          [done](caf::error& err) { done(caf::expected<T>{std::move(err)}); });
}

} // namespace detail

/// Sends one request to `dest` from a short-lived actor and calls `done` with the answer or
/// the error (a timeout after `timeout`), on a CAF thread. Never blocks the caller; `done`
/// runs exactly once. An invalid `dest` fails at once with `sec::invalid_argument`.
template <class T, class Handle, class... Ts>
void ask(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds timeout,
         std::function<void(caf::expected<T>)> done, Ts&&... xs) {
  if (!dest) {
    done(caf::expected<T>{caf::make_error(caf::sec::invalid_argument)});
    return;
  }
  sys.spawn(detail::ask_actor<T, Handle, std::decay_t<Ts>...>, dest, timeout, std::move(done),
            std::forward<Ts>(xs)...);
}

} // namespace troupe::http

#pragma once

#include "protocol/type_ids.hpp"

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::actors {

/// argon2id cost parameters. The defaults are OWASP's recommendation (19 MiB, 2 passes, 1 lane);
/// production values come from `auth.argon2-*` in the configuration, which validates them.
struct argon2_params {
  std::uint32_t memory_kib = 19456;
  std::uint32_t iterations = 2;
  std::uint32_t parallelism = 1;
};

/// argon2id of `password` with a fresh 16-byte salt from the OS, as a PHC string
/// `$argon2id$v=19$m=19456,t=2,p=1$<salt b64>$<hash b64>` (32-byte hash). Empty if argon2
/// refuses the parameters (memory below 8 KiB per lane) or cannot allocate its memory, or if
/// the OS has no randomness. Blocking and CPU-heavy (tens of ms with the defaults): call it
/// from a `password_hasher_actor` worker, never from a scheduled actor.
std::string hash_password(std::string_view password, const argon2_params& params);

/// True if `password` matches the PHC string `encoded` (which carries its own parameters and
/// salt); compares in constant time. False for malformed strings and other algorithms than
/// argon2id. Blocking and CPU-heavy, like hash_password().
bool verify_password(std::string_view password, const std::string& encoded);

/// A PHC string of a random password with `params`. Verify against it when an account does not
/// exist, so that "unknown email" and "wrong password" take similar time. Computed once per
/// `params` (the first call blocks like hash_password()); thread-safe; the reference stays valid.
const std::string& dummy_hash(const argon2_params& params);

/// Hashes and verifies passwords off the calling actor. Replies to `(hash_atom, password)` with
/// hash_password()'s PHC string (or `errc::internal` if it failed) and to
/// `(verify_atom, password, encoded)` with verify_password()'s answer. Either may fail with
/// `errc::service_unavailable` when too many jobs are waiting.
using password_hasher_actor
  = caf::typed_actor<caf::replies_to<protocol::hash_atom, std::string>::with<std::string>,
                     caf::replies_to<protocol::verify_atom, std::string, std::string>::with<bool>>;

/// Spawns a dispatcher with `workers` (≥ 1) detached, linked worker actors, each on its own
/// thread, so that argon2 never stalls a CAF scheduler thread or a tenant actor. Jobs run in
/// arrival order; a job that finds every worker busy waits, and a job that would make more than
/// `queue_limit` wait is refused at once with `errc::service_unavailable`. When the dispatcher
/// exits, the jobs it still holds fail with `errc::service_unavailable`; a worker that dies
/// takes the dispatcher with it (the link), for its supervisor to restart.
password_hasher_actor spawn_password_hasher(caf::actor_system& sys, argon2_params params,
                                            std::size_t workers, std::size_t queue_limit = 256);

/// As above, spawned by `parent` (e.g. in a supervisor's `child_spec::start`).
password_hasher_actor spawn_password_hasher(caf::local_actor* parent, argon2_params params,
                                            std::size_t workers, std::size_t queue_limit = 256);

} // namespace troupe::actors

#pragma once

#include "protocol/auth.hpp"

#include <caf/fwd.hpp>

#include <memory>

namespace troupe::storage {
struct audit_secrets;
} // namespace troupe::storage

namespace troupe::actors {

/// Spawns the users and roles service (protocol::users_actor; registered as
/// `protocol::users_key`): users (list, get, change, erase, assign roles) and custom roles
/// (docs/rbac.md). Stateless: reads on the pool, writes as audited work through the
/// directory, whose tenant actor drops its cached users and roles when they change. `audit`
/// destroys an erased user's data key.
protocol::users_actor spawn_users_service(caf::local_actor* parent,
                                          std::shared_ptr<const storage::audit_secrets> audit);

} // namespace troupe::actors

#pragma once

// The deterministic actor-test fixture: nothing runs until run() / sched.run(), and time
// moves only by advance_time(), so actor tests never sleep or flake.

#define FAIL(msg) CAF_FAIL(msg) // CAF 0.17.6: dsl.hpp's request<T>() uses an undefined FAIL()

#include "protocol/type_ids.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/test/dsl.hpp>

namespace troupe::tests {

struct test_config : caf::actor_system_config {
  test_config() {
    add_message_types<caf::id_block::troupe>();
  }
};

using actor_fixture = test_coordinator_fixture<test_config>;

} // namespace troupe::tests

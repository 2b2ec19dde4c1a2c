#include "protocol/auth.hpp"

#include "protocol/error.hpp"

namespace troupe::protocol {

auth_callback::state::~state() {
  if (!called.exchange(true) && f) {
    f(caf::make_error(errc::service_unavailable, "the authentication was dropped"));
  }
}

} // namespace troupe::protocol

#include "protocol/error.hpp"

#include <caf/atom.hpp>
#include <caf/sec.hpp>

namespace troupe::protocol {

std::string to_string(errc x) {
  return std::string{info(x).name};
}

errc to_errc(const caf::error& err) {
  if (err.category() == caf::atom("troupe")) {
    return static_cast<errc>(err.code());
  }
  if (err == caf::sec::request_timeout || err == caf::sec::request_receiver_down) {
    return errc::service_unavailable;
  }
  return errc::internal;
}

std::string describe(const caf::error& err) {
  if (!err) {
    return "none";
  }
  if (err.category() == caf::atom("troupe")) {
    return "troupe:" + to_string(static_cast<errc>(err.code()));
  }
  if (err.category() == caf::atom("system")) {
    return "system:" + caf::to_string(static_cast<caf::sec>(err.code()));
  }
  return "error(" + std::to_string(err.code()) + ", " + caf::to_string(err.category()) + ")";
}

} // namespace troupe::protocol

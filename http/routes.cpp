#include "http/routes.hpp"

#include "http/routes/platform.hpp"

namespace troupe::http {

std::shared_ptr<router> make_router(const services& svc) {
  auto r = std::make_shared<router>();
  // Platform (API.md "Platform"). Keep docs/openapi.json in step with this table: a unit
  // test compares them.
  r->add({verb::get, "/healthz", routes::healthz(), "liveness"});
  r->add({verb::get, "/readyz", routes::readyz(svc), "readiness"});
  r->add({verb::get, "/metrics", routes::metrics(svc), "Prometheus metrics"});
  r->add({verb::get, "/openapi.json", routes::openapi(), "this API's OpenAPI document"});
  r->add({verb::get, "/problems/{code}", routes::problem_page(), "problem type documentation"});
  return r;
}

} // namespace troupe::http

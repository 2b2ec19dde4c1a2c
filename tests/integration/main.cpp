// The one translation unit of the integration-test binary that defines main() and the runner.
#define CAF_SUITE integration.main
#define FAIL(msg) CAF_FAIL(msg) // CAF 0.17.6: dsl.hpp's request<T>() uses an undefined FAIL()

#include <caf/test/dsl.hpp>
#include <caf/test/unit_test_impl.hpp>

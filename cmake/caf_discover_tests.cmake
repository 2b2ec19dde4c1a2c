# Script mode: cmake -D EXE=... -D OUT=... -D TIER=unit|integration -P caf_discover_tests.cmake
# Asks a CAF 0.17 test binary for its suites (-a) and tests (-A suite) and writes one
# add_test() per test into OUT, so each test runs in its own process (CAF_REQUIRE aborts).
execute_process(COMMAND "${EXE}" -a OUTPUT_VARIABLE suites_out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} -a failed: ${rc}")
endif()
string(REPLACE "\n" ";" suite_lines "${suites_out}")
set(content "")
set(extra "")
if(TIER STREQUAL "integration")
  set(extra "RESOURCE_LOCK troupe_integration_db") # they share one database: one at a time
endif()
foreach(suite_line IN LISTS suite_lines)
  if(NOT suite_line MATCHES "^  - (.+)$")
    continue()
  endif()
  set(suite "${CMAKE_MATCH_1}")
  execute_process(COMMAND "${EXE}" -A "${suite}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${EXE} -A ${suite} failed: ${rc}")
  endif()
  string(REGEX REPLACE "([][+.*()^$?|\\\\{}])" "\\\\\\1" suite_rx "${suite}")
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    if(line MATCHES "^  - (.+)$")
      set(name "${CMAKE_MATCH_1}")
      string(REGEX REPLACE "([][+.*()^$?|\\\\{}])" "\\\\\\1" rx "${name}")
      # Bracket arguments: regex backslashes and quotes need no further escaping.
      set(id "${TIER}/${suite}/${name}")
      string(APPEND content
        "add_test([==[${id}]==] [==[${EXE}]==] -n -v 4 -r 60 -s [==[^${suite_rx}$]==] -t [==[^${rx}$]==])\n"
        "set_tests_properties([==[${id}]==] PROPERTIES FAIL_REGULAR_EXPRESSION \"tests: +0\\n\" TIMEOUT 120 LABELS ${TIER} ${extra})\n")
    endif()
  endforeach()
endforeach()
file(WRITE "${OUT}" "${content}")

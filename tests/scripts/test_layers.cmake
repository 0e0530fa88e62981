# The layer check (cmake/Layers.cmake) must pass on the real tree and reject a
# copy of it with one upward include planted, naming the file and line. One
# copy per planted include, each in a scratch folder under WORK_DIR.
# Run: cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -P test_layers.cmake

function(run_check root out_rc out_text)
  execute_process(COMMAND ${CMAKE_COMMAND} -DLAYERS_ROOT=${root} -P
                          ${SOURCE_DIR}/cmake/Layers.cmake
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_rc} "${rc}" PARENT_SCOPE)
  set(${out_text} "${out}${err}" PARENT_SCOPE)
endfunction()

run_check(${SOURCE_DIR} rc text)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the real tree fails the layer check:\n${text}")
endif()

# file to plant in | the line planted | expected in the message
set(cases
    "lib/money.c|#include \"node/ledger.h\"|lib/money.c:"
    "lib/slice.h|#include \"ops/loadgen/hist.h\"|lib/slice.h:"
    "proto/event.c|#include \"lib/log.h\"|proto/event.c:"
    "proto/wire.h|#include <uv.h>|proto/wire.h:"
    "node/ledger.c|#include \"ops/procsim/psim_store.h\"|node/ledger.c:"
    "ops/loadgen/rng.c|#include \"node/ledger.h\"|ops/loadgen/rng.c:")

set(n 0)
foreach(c IN LISTS cases)
  string(REPLACE "|" ";" parts "${c}")
  list(GET parts 0 file)
  list(GET parts 1 line)
  list(GET parts 2 expect)
  math(EXPR n "${n} + 1")
  set(copy ${WORK_DIR}/layers_${n})
  file(REMOVE_RECURSE ${copy})
  foreach(layer lib proto node ops)
    file(COPY ${SOURCE_DIR}/${layer} DESTINATION ${copy})
  endforeach()
  # Before the planting the copy passes: a failure below is the planted line.
  run_check(${copy} rc text)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "unplanted copy ${copy} fails:\n${text}")
  endif()
  file(READ ${copy}/${file} body)
  file(WRITE ${copy}/${file} "${body}${line}\n")
  string(REGEX MATCHALL "\n" nl "${body}")
  list(LENGTH nl planted_at)
  math(EXPR planted_at "${planted_at} + 1")
  run_check(${copy} rc text)
  if(rc EQUAL 0)
    message(FATAL_ERROR "planted '${line}' in ${file}: not rejected")
  endif()
  string(FIND "${text}" "${expect}${planted_at}:" at)
  if(at LESS 0)
    message(FATAL_ERROR "planted '${line}' in ${file} (line ${planted_at}): rejected, "
                        "but the message does not name ${expect}${planted_at}:\n${text}")
  endif()
  message(STATUS "rejected as expected: ${file}:${planted_at}: ${line}")
  file(REMOVE_RECURSE ${copy})
endforeach()

# tests/harness.cmake - the test harness library, and shml_add_test_binary() which builds a
# test binary and registers each of its TESTs as its own ctest entry. Every test area
# include()s this file; the harness target is defined once, by whichever area comes first.

# harness.c is the same everywhere; the platform file (processes, pipes, cleanup) is picked here.
if(NOT TARGET shml_harness)
  if(WIN32)
    add_library(shml_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/harness.c
      ${CMAKE_CURRENT_LIST_DIR}/harness_win32.c)
    # The harness calls shml_segment_unlink() to remove the win: segments a test registered.
    # Declared without dllimport, the call links against the DLL's import library and against
    # the static library alike, whichever the test binary brings.
    target_compile_definitions(shml_harness PRIVATE SHML_STATIC)
  else()
    add_library(shml_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/harness.c
      ${CMAKE_CURRENT_LIST_DIR}/harness_unix.c)
    find_package(Threads REQUIRED) # shmt_toggler_start()
    target_link_libraries(shml_harness PUBLIC Threads::Threads)
  endif()
  target_include_directories(shml_harness PUBLIC
    ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_compile_definitions(shml_harness PRIVATE SHMT_AREA="harness")
endif()

# shml_add_test_binary(TARGET AREA SOURCES src... [LIBS lib...] [SERIAL name...]
#                      [LABELS label...] [ENVIRONMENT var=value...] [EXCLUDE name...])
#
# Test names come from the sources at configure time: every line that starts with
# TEST(name) or TEST_TIMEOUT(name, seconds) becomes the ctest entry AREA.name, which runs
# `TARGET --run AREA.name`, with a ctest TIMEOUT a margin above the harness's own timeout,
# SKIP_RETURN_CODE 77 and the label AREA. Editing a source re-runs the configure step.
# Tests named in SERIAL take the RESOURCE_LOCK shml_global (shared with the CLI tests): they
# run gc or depend on machine-wide state, so they never overlap one another.
# LABELS adds ctest labels to every test of the binary, besides AREA: `inproc` marks binaries
# whose tests use threads of one process only, which the TSan phase of scripts/test runs.
# ENVIRONMENT sets variables for every test of the binary (the Windows tests scale down).
# EXCLUDE names tests of the sources that get no ctest entry (what a platform cannot run; the
# binary still has them, for `TARGET --run`).
function(shml_add_test_binary target area)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;SERIAL;LABELS;ENVIRONMENT;EXCLUDE" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE shml_harness ${ARG_LIBS})
  target_compile_definitions(${target} PRIVATE SHMT_AREA="${area}")
  set(labels ${area} ${ARG_LABELS})
  foreach(src IN LISTS ARG_SOURCES)
    get_filename_component(abs ${src} ABSOLUTE)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${abs})
    file(STRINGS ${abs} lines REGEX "^TEST(_TIMEOUT)?\\(")
    foreach(line IN LISTS lines)
      if(line MATCHES "^TEST\\(([A-Za-z0-9_]+)\\)")
        set(name ${CMAKE_MATCH_1})
        set(timeout 30)
      elseif(line MATCHES "^TEST_TIMEOUT\\(([A-Za-z0-9_]+), *([0-9]+)\\)")
        set(name ${CMAKE_MATCH_1})
        set(timeout ${CMAKE_MATCH_2})
      else()
        message(FATAL_ERROR "${abs}: cannot read the test name in: ${line}")
      endif()
      if(name IN_LIST ARG_EXCLUDE)
        list(REMOVE_ITEM ARG_EXCLUDE ${name})
        continue()
      endif()
      set(full ${area}.${name})
      add_test(NAME ${full} COMMAND ${target} --run ${full})
      math(EXPR ctest_timeout "${timeout} + 30")
      set_tests_properties(${full} PROPERTIES
        TIMEOUT ${ctest_timeout} SKIP_RETURN_CODE 77 LABELS "${labels}")
      if(ARG_ENVIRONMENT)
        set_tests_properties(${full} PROPERTIES ENVIRONMENT "${ARG_ENVIRONMENT}")
      endif()
      # Tests that look at or change machine-wide state (gc, /dev/shm free space) never run
      # at the same time as each other.
      if(name IN_LIST ARG_SERIAL)
        set_tests_properties(${full} PROPERTIES RESOURCE_LOCK shml_global)
      endif()
    endforeach()
  endforeach()
  if(ARG_EXCLUDE)
    message(FATAL_ERROR "${target}: EXCLUDE names no test of its sources: ${ARG_EXCLUDE}")
  endif()
endfunction()

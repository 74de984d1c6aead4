if(CMAKE_SCRIPT_MODE_FILE)
  cmake_minimum_required(VERSION 3.25)
endif()
# The rule core/ and host/ live by (docs/architecture.md, "The seam"): no I/O, no clock, no
# thread, no randomness but the seeded Rng. A file that includes a header or names a facility
# below fails the build, naming the file and the offending line.
#
# Used two ways:
#   include(io_free) + chatlab_require_io_free(<dir> FILES...)   at configure time;
#   cmake -DCHATLAB_IO_FREE_FILES="a.cc;b.h" -P cmake/io_free.cmake   (the build-rule test).

# Headers that bring I/O, clocks, threads or unseeded randomness.
set(CHATLAB_IO_FREE_BAD_INCLUDES
    "#include *[<\"](boost|simgrid|asio|sqlite3|openssl|hiredis|libpq|amqp)"
    "#include *<(chrono|ctime|time\\.h|sys/time\\.h|thread|mutex|shared_mutex|condition_variable|future|atomic|semaphore|stop_token|random|fstream|iostream|cstdio|stdio\\.h|unistd\\.h|filesystem)>"
    "#include *\"absl/(time|random|synchronization)/")
# Facilities named without an include of their own.
set(CHATLAB_IO_FREE_BAD_NAMES
    "std::chrono|std::this_thread|std::thread|std::async|std::random_device|std::rand[^_a-z]|std::time\\(|[^_A-Za-z0-9:.>]s?rand\\(|clock_gettime|gettimeofday|getenv|fopen|std::cout|std::cerr")

function(chatlab_check_io_free_files out_errors)
  set(errors "")
  foreach(f IN LISTS ARGN)
    foreach(rule IN LISTS CHATLAB_IO_FREE_BAD_INCLUDES CHATLAB_IO_FREE_BAD_NAMES)
      file(STRINGS ${f} hits REGEX "${rule}")
      foreach(hit IN LISTS hits)
        string(STRIP "${hit}" hit)
        if(hit MATCHES "^//")
          continue()  # a comment may name what it must not use
        endif()
        list(APPEND errors "${f}: ${hit}")
      endforeach()
    endforeach()
  endforeach()
  set(${out_errors} "${errors}" PARENT_SCOPE)
endfunction()

function(chatlab_require_io_free dir)
  chatlab_check_io_free_files(errors ${ARGN})
  if(errors)
    list(JOIN errors "\n  " text)
    message(FATAL_ERROR "${dir}/ must do no I/O and read no clock, start no thread and draw no "
                        "unseeded randomness (docs/architecture.md, \"The seam\"), but:\n  ${text}")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND DEFINED CHATLAB_IO_FREE_FILES)
  chatlab_require_io_free("checked" ${CHATLAB_IO_FREE_FILES})
endif()

# Run at build time (not configure time) by the chatlab_version target in sim/CMakeLists.txt:
# writes OUT, a header defining CHATLAB_VERSION as VERSION + git describe (+ "-dirty" when a
# tracked file the build is made of differs from the commit; reports/ is what the build makes,
# not what it is made of). OUT is rewritten only when its text changes, so an unchanged tree
# recompiles nothing, and a commit made after configuring can never leave a stale version in a
# binary (every results.json and report names the build that made it).
execute_process(COMMAND git describe --always WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE git OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT git)
  set(git "nogit")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no -- . ":(exclude)reports"
                  WORKING_DIRECTORY ${SRC}
                  OUTPUT_VARIABLE changed OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(changed)
    string(APPEND git "-dirty")
  endif()
endif()
set(text "#define CHATLAB_VERSION \"${VERSION}+${git}\"\n")
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()

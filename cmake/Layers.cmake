# The library layering of DESIGN.md §3 ("each src/ folder is one static library; arrows are the
# only allowed links"), as ONE table that every check reads:
#   - cmake/check_layers.cmake (build step before any library compiles, and ctest `layers`)
#     fails when a file includes a header of a library its own may not reach;
#   - sq_layers_check_links() (configure time) fails when a sq_* target links a sq_* library
#     that its arrows do not name, so the CMake link graph cannot drift from the table either.
# This file is included both from the project and from `cmake -P` scripts: it only sets
# variables and defines functions.

# <library>:<the libraries it links directly, comma separated>. These are DESIGN.md §3's arrows
# word for word, "everything → common" spelled out. A library may include its own headers and
# those of every library reachable along the arrows (coordinator → rank → io reaches io: the
# static libraries link transitively, so that is what a per-library include path propagated
# through PUBLIC links would allow too); anything else — an upward include (io → rank) or a
# sideways one (io ↔ solvers) — is a violation.
set(SQ_LAYERS
    "common:"
    "io:common"
    "solvers:common"
    "rank:io,solvers,common"
    "coordinator:rank,common")

# Inside a library, its sub-folders by concern (DESIGN.md §3 "a folder whose files serve several
# concerns gets sub-folders") with their own one-way arrows: "<lib>/<sub>:<subs it may include>".
# A library with rows here keeps every source in one of these sub-folders. Checked by
# cmake/check_layers.cmake like the library arrows (src/ only: a test may include any part of
# the library it tests).
set(SQ_SUBLAYERS
    "io/safetensors:"
    "io/format:"
    "io/tokenizer:"
    "io/hdf5:"
    "io/model:safetensors,format"
    "io/output:model,safetensors"
    "io/calib:tokenizer,hdf5"
    "rank/device:"
    "rank/transport:device"
    "rank/model:"
    "rank/eval:model"
    "rank/synth:model"
    "rank/quant:device,model,transport"
    "rank/worker:device,model,quant,transport"
    "coordinator/options:"
    "coordinator/plan:options"
    "coordinator/run:options,plan"
    "coordinator/app:options,run")

# The closure of `start` along the arrows of the table in variable `rows` (rows
# "<prefix><name>:<name>,<name>..."): `start` and every name reachable from it; empty when
# `start` has no row.
function(sq_rows_closure rows prefix start out)
  set(_seen "")
  set(_todo ${start})
  while(_todo)
    list(POP_FRONT _todo _cur)
    set(_found FALSE)
    set(_next "")
    foreach(_row ${${rows}})
      if(_row MATCHES "^${prefix}${_cur}:(.*)$")
        set(_found TRUE)
        string(REPLACE "," ";" _next "${CMAKE_MATCH_1}")
      endif()
    endforeach()
    if(NOT _found)
      continue()
    endif()
    list(APPEND _seen ${_cur})
    foreach(_n ${_next})
      if(NOT _n IN_LIST _seen AND NOT _n IN_LIST _todo)
        list(APPEND _todo ${_n})
      endif()
    endforeach()
  endwhile()
  set(${out} ${_seen} PARENT_SCOPE)
endfunction()

# Every sub-folder `lib`/`sub` may include: itself and the closure of its row's arrows; empty
# `out` when lib/sub has no row.
function(sq_sublayers_reachable lib sub out)
  sq_rows_closure(SQ_SUBLAYERS "${lib}/" ${sub} _seen)
  set(${out} ${_seen} PARENT_SCOPE)
endfunction()

# The libraries that have sub-folder rows.
function(sq_sublayer_libraries out)
  set(_l "")
  foreach(_row ${SQ_SUBLAYERS})
    string(REGEX REPLACE "/.*" "" _lib "${_row}")
    list(APPEND _l ${_lib})
  endforeach()
  list(REMOVE_DUPLICATES _l)
  set(${out} ${_l} PARENT_SCOPE)
endfunction()

# tests/<folder> → the library whose level its code sits at (the library its suite links in
# tests/CMakeLists.txt; sq_layers_check_links() checks that). Helpers in tests/<folder>/tools/
# sit at their folder's level too. Top-level tests/*.h and tests/*.cpp (test_paths.h,
# test_main.cpp) go into every suite and so sit at the bottom, common.
set(SQ_TEST_LAYERS
    "common:common"
    "io:io"
    "solvers:solvers"
    "rank:rank"
    "coordinator:coordinator"
    "cli:coordinator"
    "dist:coordinator"
    "fuzz:io")

# The libraries, in table order.
function(sq_layers_libraries out)
  set(_libs "")
  foreach(_row ${SQ_LAYERS})
    string(REGEX REPLACE ":.*" "" _lib "${_row}")
    list(APPEND _libs ${_lib})
  endforeach()
  set(${out} ${_libs} PARENT_SCOPE)
endfunction()

# The direct arrows of `lib` (empty list for common).
function(sq_layers_direct lib out)
  set(_deps "")
  foreach(_row ${SQ_LAYERS})
    if(_row MATCHES "^${lib}:(.*)$")
      string(REPLACE "," ";" _deps "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  set(${out} ${_deps} PARENT_SCOPE)
endfunction()

# Every library `lib` may include: itself and the transitive closure of its arrows.
function(sq_layers_reachable lib out)
  sq_rows_closure(SQ_LAYERS "" ${lib} _seen)
  if(NOT _seen)
    set(_seen ${lib})  # a library without a row reaches only itself
  endif()
  set(${out} ${_seen} PARENT_SCOPE)
endfunction()

# Library level of test folder `folder` ("" when the folder is not in SQ_TEST_LAYERS).
function(sq_layers_test_level folder out)
  set(_lvl "")
  foreach(_row ${SQ_TEST_LAYERS})
    if(_row MATCHES "^${folder}:(.*)$")
      set(_lvl ${CMAKE_MATCH_1})
    endif()
  endforeach()
  set(${out} ${_lvl} PARENT_SCOPE)
endfunction()

# Configure time, after every target exists: each sq_<lib> links exactly the sq_* libraries of
# its arrows (none missing: an arrow without a link would let the include check pass code that
# cannot link), and each test_<folder> suite links the library of its SQ_TEST_LAYERS row.
function(sq_layers_check_links)
  sq_layers_libraries(_libs)
  foreach(_lib ${_libs})
    if(NOT TARGET sq_${_lib})
      message(FATAL_ERROR "cmake/Layers.cmake names library ${_lib}, but there is no target sq_${_lib}")
    endif()
    get_target_property(_links sq_${_lib} LINK_LIBRARIES)
    set(_have "")
    foreach(_l ${_links})
      if(_l MATCHES "^sq_(.+)$" AND CMAKE_MATCH_1 IN_LIST _libs)
        list(APPEND _have ${CMAKE_MATCH_1})
      endif()
    endforeach()
    sq_layers_direct(${_lib} _want)
    # common is implied for everyone ("everything → common"); a library may reach it through
    # another arrow instead of linking it itself.
    list(REMOVE_ITEM _want common)
    list(REMOVE_ITEM _have common)
    list(SORT _want)
    list(SORT _have)
    if(NOT "${_have}" STREQUAL "${_want}")
      message(FATAL_ERROR "sq_${_lib} links sq_{${_have}} but DESIGN.md §3 (cmake/Layers.cmake) "
                          "gives it the arrows {${_want}} (besides common)")
    endif()
  endforeach()
  foreach(_row ${SQ_TEST_LAYERS})
    string(REGEX MATCH "^([^:]*):(.*)$" _m "${_row}")
    set(_folder ${CMAKE_MATCH_1})
    set(_lvl ${CMAKE_MATCH_2})
    if(TARGET test_${_folder})
      get_target_property(_links test_${_folder} LINK_LIBRARIES)
      if(NOT sq_${_lvl} IN_LIST _links)
        message(FATAL_ERROR "test_${_folder} does not link sq_${_lvl}, its level in cmake/Layers.cmake")
      endif()
    endif()
  endforeach()
endfunction()

# The include check as a build step: target sq_layer_check reruns cmake/check_layers.cmake when
# any scanned file (or the table) changes, and every sq_* library depends on it, so a violating
# include stops the build before anything compiles. (Per-library include directories would make
# the compiler enforce it, but every include path of every object would change: a full rebuild
# without ccache hits for everyone, for the same rule.)
function(sq_layers_build_check)
  file(GLOB_RECURSE _scanned CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/src/*.h ${PROJECT_SOURCE_DIR}/src/*.cpp
       ${PROJECT_SOURCE_DIR}/src/*.cu ${PROJECT_SOURCE_DIR}/src/*.cuh
       ${PROJECT_SOURCE_DIR}/tests/*.h ${PROJECT_SOURCE_DIR}/tests/*.cpp)
  set(_stamp ${PROJECT_BINARY_DIR}/layers.stamp)
  add_custom_command(
    OUTPUT ${_stamp}
    COMMAND ${CMAKE_COMMAND} -DSQ_ROOT=${PROJECT_SOURCE_DIR} -P
            ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    COMMAND ${CMAKE_COMMAND} -E touch ${_stamp}
    DEPENDS ${_scanned} ${PROJECT_SOURCE_DIR}/cmake/Layers.cmake
            ${PROJECT_SOURCE_DIR}/cmake/check_layers.cmake
    COMMENT "include directions (DESIGN.md §3, cmake/Layers.cmake)"
    VERBATIM)
  add_custom_target(sq_layer_check DEPENDS ${_stamp})
  sq_layers_libraries(_libs)
  foreach(_lib ${_libs})
    add_dependencies(sq_${_lib} sq_layer_check)
  endforeach()
endfunction()

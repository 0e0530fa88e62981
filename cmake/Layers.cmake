# Dependency direction between the source folders (docs/ARCHITECTURE.md):
#   lib/   includes only lib/ (payment-agnostic building blocks)
#   proto/ includes only proto/ and the C standard library
#   node/  includes lib/ and proto/ (never ops/)
#   ops/   includes lib/ and proto/ (never node/)
# layers_check(<root>) scans every #include line of <root>/{lib,proto,node,ops}
# and stops with FATAL_ERROR naming each offending file and line. The top-level
# CMakeLists.txt runs it at configure time; run it alone with
#   cmake -DLAYERS_ROOT=<tree> -P cmake/Layers.cmake
# (tests/layers/test_layers.cmake does, on a copy with planted violations).

# C11 standard headers: all that proto/ may include with <...>.
set(LAYERS_LIBC_HEADERS
    assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h limits.h
    locale.h math.h setjmp.h signal.h stdalign.h stdarg.h stdatomic.h stdbool.h
    stddef.h stdint.h stdio.h stdlib.h stdnoreturn.h string.h tgmath.h threads.h
    time.h uchar.h wchar.h wctype.h)

# Sets <out> to the reason why <layer> may not include <target>, or to "".
# quoted is TRUE for #include "...", FALSE for #include <...>.
function(_layers_verdict layer target quoted out)
  set(reason "")
  if(quoted)
    string(REGEX MATCH "^[a-z_]+/" top "${target}")
    if(layer STREQUAL "lib" AND NOT top STREQUAL "lib/")
      set(reason "lib/ may include only lib/")
    elseif(layer STREQUAL "proto" AND NOT top STREQUAL "proto/")
      set(reason "proto/ may include only proto/ and libc")
    elseif(layer STREQUAL "node" AND (top STREQUAL "ops/" OR top STREQUAL "tests/"))
      set(reason "node/ may not include ${top}")
    elseif(layer STREQUAL "ops" AND (top STREQUAL "node/" OR top STREQUAL "tests/"))
      set(reason "ops/ may include lib/ and proto/ only, not ${top}")
    endif()
  elseif(layer STREQUAL "proto")
    list(FIND LAYERS_LIBC_HEADERS "${target}" idx)
    if(idx LESS 0)
      set(reason "proto/ may include only proto/ and libc")
    endif()
  endif()
  set(${out} "${reason}" PARENT_SCOPE)
endfunction()

function(layers_check root)
  set(errors "")
  foreach(layer lib proto node ops)
    file(GLOB_RECURSE srcs "${root}/${layer}/*.c" "${root}/${layer}/*.h")
    list(SORT srcs)
    foreach(src ${srcs})
      # One list element per line. Brackets and semicolons would make CMake
      # join or split list elements; no include path holds one, so blank them.
      file(READ "${src}" content)
      string(REGEX REPLACE "[][;]" "_" content "${content}")
      string(REPLACE "\n" ";" lines "${content}")
      file(RELATIVE_PATH rel "${root}" "${src}")
      set(lineno 0)
      foreach(line IN LISTS lines)
        math(EXPR lineno "${lineno} + 1")
        if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*([\"<])([^\">]+)[\">]")
          set(quoted FALSE)
          if(CMAKE_MATCH_1 STREQUAL "\"")
            set(quoted TRUE)
          endif()
          set(target "${CMAKE_MATCH_2}")
          # A bare "name.h" next to the includer (ops tools do that) is the
          # same folder, so the same layer.
          if(quoted AND NOT target MATCHES "/")
            get_filename_component(dir "${src}" DIRECTORY)
            if(EXISTS "${dir}/${target}")
              continue()
            endif()
          endif()
          _layers_verdict(${layer} "${target}" ${quoted} reason)
          if(reason)
            string(APPEND errors "  ${rel}:${lineno}: #include ${target}: ${reason}\n")
          endif()
        endif()
      endforeach()
    endforeach()
  endforeach()
  if(errors)
    message(FATAL_ERROR "upward include (see cmake/Layers.cmake):\n${errors}")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(NOT LAYERS_ROOT)
    message(FATAL_ERROR "usage: cmake -DLAYERS_ROOT=<tree> -P Layers.cmake")
  endif()
  layers_check("${LAYERS_ROOT}")
endif()

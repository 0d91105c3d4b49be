# One interface target carries the project's warning and sanitizer flags, so every
# target opts in with a single PRIVATE link and third-party code (protoc output) can opt out.
add_library(kneeload_warnings INTERFACE)
add_library(kneeload::warnings ALIAS kneeload_warnings)
target_compile_options(kneeload_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
  -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
if(KNEELOAD_WERROR)
  target_compile_options(kneeload_warnings INTERFACE -Werror)
endif()

if(KNEELOAD_SANITIZE)
  string(REPLACE "," ";" _san_list "${KNEELOAD_SANITIZE}")
  string(REPLACE ";" "," _san "${_san_list}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
endif()

# The cpu backend's kernels (core/backends/cpu/), built for the CPU paths of core/cpu_features.h.
# Included by the top-level CMakeLists.txt after advgrad_core is declared; adds its sources to it.
#
# x86-64 without ADVGRAD_NATIVE (the default): three copies of the kernels, for AVX-512, AVX2+FMA and the
# x86-64 baseline, each an object library in its own namespace advgrad::cpu_<isa> (ADVGRAD_CPU_NS) and,
# for the two vector copies, with Eigen's namespace renamed to Eigen_<isa>: every inline or template
# function they instantiate then has a name of its own, so the linker can never take an AVX-512 copy of
# one for the baseline path (the test isa_symbols checks that no other shared name is left). All copies
# are built with -ffp-contract=off: fused multiply-adds only where a kernel asks for them (the GEMMs),
# so the other ops give the same bits on every path. Anything else (ADVGRAD_NATIVE, aarch64): one copy,
# advgrad::cpu, built with the project's flags.

set(advgrad_cpu_kernels
  core/backends/cpu/cpu_backend.cpp core/backends/cpu/elementwise.cpp core/backends/cpu/reduce.cpp
  core/backends/cpu/gather_scatter.cpp core/backends/cpu/softmax.cpp core/backends/cpu/gemm.cpp
  core/backends/cpu/conv.cpp core/backends/cpu/pool.cpp core/backends/cpu/lstm_cell.cpp core/backends/cpu/random.cpp)
target_sources(advgrad_core PRIVATE core/cpu_features.cpp core/backends/cpu/dispatch.cpp)
# GCC 12 reports false -Wmaybe-uninitialized inside its own AVX-512 intrinsics when inlining Eigen's
# packet code; silence that one warning for the files that use Eigen (those including cpu/eigen.h) only.
set_source_files_properties(core/backends/cpu/gemm.cpp core/backends/cpu/conv.cpp core/backends/cpu/lstm_cell.cpp
  PROPERTIES COMPILE_OPTIONS "$<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND NOT ADVGRAD_NATIVE)
  # What each copy may use; core/cpu_features.cpp checks the same list before running it.
  set(advgrad_isa_flags_avx512 -mavx2 -mfma -mavx512f -mavx512vl -mavx512bw -mavx512dq)
  # GCC's generic tuning splits every unaligned 32-byte load and store in two 16-byte halves, which made
  # the AVX2 convolution kernel slower than the SSE one (measured); no AVX2 CPU needs that.
  set(advgrad_isa_flags_avx2 -mavx2 -mfma
    $<$<CXX_COMPILER_ID:GNU>:-mno-avx256-split-unaligned-load -mno-avx256-split-unaligned-store>)
  set(advgrad_isa_flags_baseline)
  foreach(isa avx512 avx2 baseline)
    add_library(advgrad_cpu_${isa} OBJECT ${advgrad_cpu_kernels})
    # the project's build flags, and what advgrad_core's own sources get: the include path, OpenMP
    target_link_libraries(advgrad_cpu_${isa} PRIVATE advgrad_options)
    target_include_directories(advgrad_cpu_${isa} PRIVATE ${PROJECT_BINARY_DIR}/include)
    if(ADVGRAD_OPENMP)
      target_link_libraries(advgrad_cpu_${isa} PRIVATE OpenMP::OpenMP_CXX)
      target_compile_definitions(advgrad_cpu_${isa} PRIVATE ADVGRAD_HAVE_OPENMP)
    endif()
    target_compile_options(advgrad_cpu_${isa} PRIVATE ${advgrad_isa_flags_${isa}} -ffp-contract=off
      -Wno-psabi)  # wide vectors passed between inline functions of one copy (GCC and clang warn)
    target_compile_definitions(advgrad_cpu_${isa} PRIVATE ADVGRAD_CPU_NS=cpu_${isa})
    if(NOT isa STREQUAL "baseline")
      target_compile_definitions(advgrad_cpu_${isa} PRIVATE Eigen=Eigen_${isa})
    endif()
    target_sources(advgrad_core PRIVATE $<TARGET_OBJECTS:advgrad_cpu_${isa}>)
  endforeach()
  set_source_files_properties(core/cpu_features.cpp core/backends/cpu/dispatch.cpp
    PROPERTIES COMPILE_DEFINITIONS ADVGRAD_CPU_MULTI_ISA)
  # The symbol check holds for optimized builds: at -O0/-O1 (Debug, make sanitize) the compiler leaves more
  # std:: and header inlines out of line, so such a binary is for the machine that built it. Sanitized
  # builds also skip the per-path suites (test_dispatch still runs every path there).
  if(ADVGRAD_BUILD_TESTS AND NOT ADVGRAD_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$")
    add_test(NAME isa_symbols COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check_isa_symbols.sh
      avx512 $<TARGET_OBJECTS:advgrad_cpu_avx512> -- avx2 $<TARGET_OBJECTS:advgrad_cpu_avx2>)
    # Determinism is promised per path: the agreement and thread-count suites again on the two paths a
    # plain run does not take on an AVX-512 machine (test_dispatch checks every path directly).
    foreach(isa avx2 baseline)
      foreach(suite test_backends test_determinism)
        add_test(NAME ${suite}_${isa} COMMAND ${suite})
        set_tests_properties(${suite}_${isa} PROPERTIES ENVIRONMENT ADVGRAD_CPU_PATH=${isa})
      endforeach()
    endforeach()
  endif()
else()
  target_sources(advgrad_core PRIVATE ${advgrad_cpu_kernels})
  if(ADVGRAD_NATIVE)
    set_source_files_properties(core/cpu_features.cpp PROPERTIES COMPILE_DEFINITIONS ADVGRAD_CPU_NATIVE)
  endif()
endif()

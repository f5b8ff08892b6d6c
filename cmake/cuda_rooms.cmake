# The CUDA backend's sources join the kernels room: kernels/cuda/*.cu are compiled by nvcc for
# sm_80 and sm_90 (cmake/cuda.cmake) with every nvcc warning an error, and gs_kernels links
# the CUDA runtime and cuBLAS (cuDNN too, as the conv2d bar variant, when the toolkit has it).
if(NOT GS_HAVE_CUDA)
  return()
endif()

file(GLOB GS_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu)
target_sources(gs_kernels PRIVATE ${GS_CUDA_SOURCES})

# bench/cuda/bench_cuda_kernels.cpp: the CUDA variants timed with CUDA events. Added once every
# room exists (a deferred call at the end of the top-level CMakeLists). The emulated build always
# has it (when Google Benchmark is installed), as the ctest cuda_bench_smoke: every case once at
# tiny sizes (--smoke), so that a case that fails is found here and not on a GPU.
function(gs_add_cuda_bench)
  if(NOT TARGET gs_optim OR (NOT GS_BUILD_BENCH AND NOT GS_CUDA_EMULATED))
    return()
  endif()
  if(GS_CUDA_EMULATED)
    find_package(benchmark QUIET)
    if(NOT benchmark_FOUND)
      return()
    endif()
  else()
    find_package(benchmark REQUIRED)
  endif()
  add_executable(bench_cuda_kernels ${CMAKE_SOURCE_DIR}/bench/cuda/bench_cuda_kernels.cpp)
  target_include_directories(bench_cuda_kernels PRIVATE ${CMAKE_SOURCE_DIR})
  target_link_libraries(bench_cuda_kernels PRIVATE gs_optim benchmark::benchmark)
  set_target_properties(bench_cuda_kernels PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  if(GS_CUDA_EMULATED)
    target_include_directories(bench_cuda_kernels BEFORE PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cuda/emulator/include)
    add_test(NAME cuda_bench_smoke COMMAND bench_cuda_kernels --smoke --benchmark_min_time=0)
    set_tests_properties(cuda_bench_smoke PROPERTIES LABELS cuda)
  else()
    target_link_libraries(bench_cuda_kernels PRIVATE CUDA::cudart)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL gs_add_cuda_bench)

# GS_CUDA=EMULATE: the same .cu files compiled as C++ (GS_LAUNCH goes through the emulator),
# the runtime, cuBLAS and cuDNN of kernels/cuda/emulator/device, one emulated device. Its cuDNN
# is the convolution written out from cuDNN's definitions, so conv2d's cudnn variants run here.
if(GS_CUDA_EMULATED)
  set_source_files_properties(${GS_CUDA_SOURCES} PROPERTIES LANGUAGE CXX COMPILE_OPTIONS "-xc++")
  file(GLOB _gs_emu_runtime CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/emulator/device/*.cpp)
  target_sources(gs_kernels PRIVATE ${_gs_emu_runtime})
  target_include_directories(gs_kernels BEFORE PRIVATE ${CMAKE_SOURCE_DIR}/kernels/cuda/emulator/include)
  target_compile_definitions(gs_kernels PRIVATE GS_CUDNN=1)
  # Public for the tests that call the emulated runtime or cuDNN directly (only this build has
  # them); code asks kernels::cuda::is_emulated().
  target_compile_definitions(gs_kernels PUBLIC GS_CUDA_EMULATED=1)
  return()
endif()

# The directory-wide options (-Wall, -march=native, ...) are gcc's: give them to C++ only and
# hand nvcc its own (host-compiler warnings through -Xcompiler, nvcc warnings as errors).
get_target_property(_gs_kernel_opts gs_kernels COMPILE_OPTIONS)
set(_gs_cxx_opts "")
foreach(opt IN LISTS _gs_kernel_opts)
  list(APPEND _gs_cxx_opts "$<$<COMPILE_LANGUAGE:CXX>:${opt}>")
endforeach()
set_target_properties(gs_kernels PROPERTIES COMPILE_OPTIONS "${_gs_cxx_opts}")
target_compile_options(gs_kernels PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:--Werror all-warnings>"
  "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-Werror>"
  "$<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>")
set_target_properties(gs_kernels PROPERTIES CUDA_ARCHITECTURES "80;90" POSITION_INDEPENDENT_CODE ON)
# CMake 3.25 does not know nvcc 13's C++20 flag (it reports "dialect CUDA20 not supported"): say it.
set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
set_target_properties(gs_kernels PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON)
if(GS_CCACHE)
  set_target_properties(gs_kernels PROPERTIES CUDA_COMPILER_LAUNCHER ${GS_CCACHE})
endif()
target_link_libraries(gs_kernels PUBLIC CUDA::cudart CUDA::cublas)

# cuDNN: the conv2d bar variant, only where the header and the library are really there.
find_path(GS_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
find_library(GS_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
if(GS_CUDNN_INCLUDE AND GS_CUDNN_LIBRARY)
  target_include_directories(gs_kernels PRIVATE ${GS_CUDNN_INCLUDE})
  target_link_libraries(gs_kernels PUBLIC ${GS_CUDNN_LIBRARY})
  target_compile_definitions(gs_kernels PRIVATE GS_CUDNN=1)
  message(STATUS "gradscope: cuDNN found (${GS_CUDNN_LIBRARY}): conv2d gets the cudnn variant")
endif()

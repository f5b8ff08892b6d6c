# The GS_CUDA switch. AUTO turns the backend on when nvcc exists; the code must then compile
# for sm_80 and sm_90. EMULATE builds the backend without nvcc or a GPU: the .cu files as C++
# on the CUDA emulator's device (cmake/cuda_rooms.cmake), so the cuda-labelled tests run on CPUs.
set(GS_HAVE_CUDA OFF)
set(GS_CUDA_EMULATED OFF)
if(GS_CUDA STREQUAL "EMULATE")
  set(GS_HAVE_CUDA ON)
  set(GS_CUDA_EMULATED ON)
  return()
elseif(GS_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(GS_HAVE_CUDA ON)
  endif()
elseif(GS_CUDA)
  set(GS_HAVE_CUDA ON)
endif()
if(GS_HAVE_CUDA)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
  # CMake 3.25 knows no CUDA20 dialect for nvcc: cmake/cuda_rooms.cmake passes -std=c++20 itself.
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()

# The GS_CUDA switch. AUTO turns the backend on when nvcc exists; the code must then compile
# for sm_80 and sm_90.
set(GS_HAVE_CUDA OFF)
if(GS_CUDA STREQUAL "AUTO")
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

# oneDNN (Debian libdnnl-dev), the bar variant of the conv2d kernels ("onednn"): when the
# library and header are found they are linked to gs_kernels and GS_DNNL=1 is defined; without
# them the build goes on and the onednn variants are simply not registered. -DGS_DNNL=OFF skips
# the search. (Debian's dnnl-config.cmake insists on the OpenCL dev files, which the CPU
# primitives never use, so the library is found directly.)
option(GS_DNNL "Link oneDNN (libdnnl-dev) for the onednn conv2d variants when it is found" ON)
set(GS_HAVE_DNNL FALSE)
if(GS_DNNL)
  find_library(GS_DNNL_LIBRARY NAMES dnnl)
  find_path(GS_DNNL_INCLUDE_DIR NAMES oneapi/dnnl/dnnl.hpp)
  if(GS_DNNL_LIBRARY AND GS_DNNL_INCLUDE_DIR)
    set(GS_HAVE_DNNL TRUE)
    target_include_directories(gs_kernels SYSTEM PUBLIC ${GS_DNNL_INCLUDE_DIR})
    target_link_libraries(gs_kernels PUBLIC ${GS_DNNL_LIBRARY})
    target_compile_definitions(gs_kernels PUBLIC GS_DNNL=1)
  endif()
endif()
message(STATUS "gradscope: oneDNN=${GS_HAVE_DNNL}")

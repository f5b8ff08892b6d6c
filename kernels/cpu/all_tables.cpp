// Touches each variant table once (tables are built on first use).
#include "kernels/cpu/all_tables.h"

#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "kernels/registry.h"
#if GS_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace gs::kernels {

void register_all_cpu_tables() {
  gemm_table<float>();
  unary_table<float>();
  binary_table<float>();
  reduce_table<float>();
  softmax_table<float>();
  softmax_backward_table<float>();
  conv2d_table<float>();
  conv2d_backward_data_table<float>();
  conv2d_backward_weight_table<float>();
  max_pool2d_table<float>();
  max_pool2d_backward_table<float>();
  avg_pool2d_table<float>();
  avg_pool2d_backward_table<float>();
  adaptive_avg_pool2d_table<float>();
  adaptive_avg_pool2d_backward_table<float>();
  batch_norm_table<float>();
  batch_norm_backward_table<float>();
  batch_norm_double_backward_table<float>();
}

void check_selection_against_every_table() {
  register_all_cpu_tables();
#if GS_CUDA
  cuda::register_all_tables();
#endif
  check_selection();
}

}  // namespace gs::kernels

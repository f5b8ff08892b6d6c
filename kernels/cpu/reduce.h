// Reductions over the middle axis of a contiguous [outer, r, inner] block:
// out[o, i] = reduce_k in[o, k, i]. Front-ends in tensor/ bring any reduction to this form.
#pragma once
#include <cstdint>

#include "kernels/registry.h"

namespace gs::kernels {

enum class ReduceOp { Sum, Mean, Max, Min };

// in: (outer, r, inner) contiguous; out: (outer, inner) contiguous
template <class T> using ReduceFn = void (*)(ReduceOp op, const T* in, T* out, int64_t outer, int64_t r, int64_t inner);
template <class T> const VariantTable<ReduceFn<T>>& reduce_table();

}  // namespace gs::kernels

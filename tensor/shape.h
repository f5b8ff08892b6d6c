// Shapes and strides: element counts, contiguous strides, broadcasting, dim normalisation.
// Shape letters used in comments throughout: N batch, C channels, H, W, K out channels, R×S kernel.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gs {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[64,16,14,14]"
int64_t shape_numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);

// Numpy/PyTorch broadcasting of two shapes; op names the caller in the error.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Strides of `shape` viewed as broadcast to `target` (0 where broadcast), aligned right.
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);

// Merges adjacent dims that every operand steps through as one (stride[d] == stride[d+1] *
// shape[d+1] for each), and drops dims of size 1, in place: the same elements in the same order,
// in fewer, longer rows. [N,C,H,W] against a broadcast [1,C,1,1] becomes [N,C,H*W] against
// [1,C,1]. A strided kernel gives the same result on either form.
void coalesce_dims(Shape& shape, const std::vector<Strides*>& strides);

// Turns a possibly negative dim into [0, ndim); errors name the op and the range.
int normalize_dim(const char* op, int64_t dim, int64_t ndim);

}  // namespace gs

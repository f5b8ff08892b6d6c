// Model spec files: a JSON description of a Sequential, one layer per entry.
//
//   {"layers": [{"type": "conv2d", "in": 1, "out": 32, "kernel": 3, "padding": 1},
//               {"type": "batchnorm2d", "features": 32}, {"type": "relu"}, {"type": "maxpool2d", "kernel": 2},
//               {"type": "flatten"}, {"type": "linear", "in": 6272, "out": 10}, {"type": "dropout", "p": 0.5}]}
//
// Types and keys (defaults in brackets; "int|[h,w]" takes a number or a pair):
//   linear        in, out, bias [true]
//   conv2d        in, out, kernel int|[h,w], stride int|[h,w] [1], padding int|[h,w] [0], dilation int|[h,w] [1],
//                 groups [1], bias [true]
//   batchnorm1d, batchnorm2d   features, eps [1e-5], momentum [0.1], affine [true], track_running_stats [true]
//   maxpool2d, avgpool2d       kernel int|[h,w], stride int|[h,w] [kernel], padding int|[h,w] [0]
//                              (avgpool2d also count_include_pad [true])
//   adaptive_avgpool2d         out int|[h,w]
//   flatten       start_dim [1], end_dim [-1]
//   dropout       p [0.5]
//   relu, gelu, sigmoid, tanh, identity; leaky_relu slope [0.01]
//   basic_block   in, out, stride [1]   (residual block, see residual.h)
// Every entry may also carry "name" (the child's name instead of its index). The top level may
// carry "name" and "description". Errors name the file, the entry index and the bad key/value;
// unknown types and keys list the known ones.
#pragma once
#include <string>
#include <vector>

#include "layers/module.h"

namespace gs::nn {

ModulePtr load_model_spec(const std::string& path);
// `source` names the text in error messages (a file name, or "<spec>").
ModulePtr model_from_spec_json(const std::string& text, const std::string& source = "<spec>");
std::vector<std::string> spec_layer_types();

}  // namespace gs::nn

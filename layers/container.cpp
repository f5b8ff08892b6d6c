// Sequential container. In eval mode under no_grad, Conv2d -> BatchNorm2d [-> ReLU] runs as one
// folded convolution (layers/fused.h); in training, segments of it may be checkpointed.
#include "layers/container.h"

#include <algorithm>

#include "autograd/checkpoint.h"
#include "layers/activation.h"
#include "layers/fused.h"

namespace gs::nn {

Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
  for (auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(ModulePtr module) { return push_back(std::to_string(modules_.size()), module); }

Sequential& Sequential::push_back(const std::string& name, ModulePtr module) {
  for (auto& [n, c] : named_children()) {
    GS_CHECK(n != name, "Sequential::push_back: a child named '%s' already exists", name.c_str());
  }
  attach_child(name, module);
  modules_.push_back(std::move(module));
  return *this;
}

ModulePtr Sequential::operator[](size_t i) const {
  GS_CHECK(i < modules_.size(), "Sequential: index %zu is out of range (size %zu)", i, modules_.size());
  return modules_[i];
}

void Sequential::set_recompute_segments(int segments) {
  GS_CHECK(segments >= 1 && static_cast<size_t>(segments) <= std::max<size_t>(modules_.size(), 1),
           "Sequential: recompute segments must be in [1, %zu] (the number of children), got %d",
           std::max<size_t>(modules_.size(), 1), segments);
  recompute_segments_ = segments;
}

Tensor Sequential::forward(const Tensor& x) {
  if (recompute_segments_ <= 1 || !GradMode::is_enabled()) return run_children(0, modules_.size(), x);
  // checkpoint_sequential's split: segments of size()/segments, the last one not checkpointed
  // (its saved tensors are needed at once by backward).
  const size_t size = modules_.size() / static_cast<size_t>(recompute_segments_);
  Tensor y = x;
  size_t begin = 0;
  for (int s = 0; s + 1 < recompute_segments_; ++s, begin += size) {
    y = checkpoint([this, begin, size](const Tensor& in) { return run_children(begin, begin + size, in); }, y);
  }
  return run_children(begin, modules_.size(), y);
}

Tensor Sequential::run_children(size_t begin, size_t end, Tensor x) {
  Tensor y = x;
  for (size_t i = begin; i < end; ++i) {
    auto* conv = dynamic_cast<Conv2d*>(modules_[i].get());
    auto* bn = conv && i + 1 < end ? dynamic_cast<BatchNormBase*>(modules_[i + 1].get()) : nullptr;
    if (bn && can_fuse_conv_bn(*conv, *bn)) {
      auto* relu = i + 2 < end ? dynamic_cast<ReLU*>(modules_[i + 2].get()) : nullptr;
      const bool with_relu = relu && !relu->has_forward_hooks();
      y = fused_conv_bn(*conv, *bn, with_relu, y);
      i += with_relu ? 2 : 1;
      continue;
    }
    y = (*modules_[i])(y);
  }
  return y;
}

}  // namespace gs::nn

// Sequential container. In eval mode under no_grad, Conv2d -> BatchNorm2d [-> ReLU] runs as one
// folded convolution (layers/fused.h).
#include "layers/container.h"

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

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < modules_.size(); ++i) {
    auto* conv = dynamic_cast<Conv2d*>(modules_[i].get());
    auto* bn = conv && i + 1 < modules_.size() ? dynamic_cast<BatchNormBase*>(modules_[i + 1].get()) : nullptr;
    if (bn && can_fuse_conv_bn(*conv, *bn)) {
      auto* relu = i + 2 < modules_.size() ? dynamic_cast<ReLU*>(modules_[i + 2].get()) : nullptr;
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

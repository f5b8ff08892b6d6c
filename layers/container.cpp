// Sequential container.
#include "layers/container.h"

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
  for (auto& m : modules_) y = (*m)(y);
  return y;
}

}  // namespace gs::nn

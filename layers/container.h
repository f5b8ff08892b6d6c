// Sequential: runs its children in order. push_back(m) names children "0", "1", ... as
// torch.nn.Sequential; push_back(name, m) gives a name of your own ("features").
//
//   auto net = std::make_shared<gs::nn::Sequential>();
//   net->push_back(std::make_shared<gs::nn::Linear>(784, 10));
//   net->push_back(std::make_shared<gs::nn::ReLU>());
//   auto fc = net->at<gs::nn::Linear>(0);
#pragma once
#include <initializer_list>

#include "layers/module.h"

namespace gs::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> modules);

  Sequential& push_back(ModulePtr module);  // named by its index
  Sequential& push_back(const std::string& name, ModulePtr module);
  size_t size() const { return modules_.size(); }
  bool empty() const { return modules_.empty(); }
  ModulePtr operator[](size_t i) const;
  // The i-th child as M; throws naming both types when it is something else.
  template <class M>
  std::shared_ptr<M> at(size_t i) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[i]);
    GS_CHECK(m != nullptr, "Sequential::at: child %zu is a %s, not the requested type", i,
             (*this)[i]->type_name().c_str());
    return m;
  }
  const std::vector<ModulePtr>& modules() const { return modules_; }

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }

  // Activation checkpointing as torch.utils.checkpoint.checkpoint_sequential: with grad mode on,
  // the children run in `segments` consecutive segments of size()/segments children (the last
  // takes the rest), and all but the last run under gs::checkpoint (autograd/checkpoint.h): only
  // a segment's input is kept, the rest is recomputed in backward. The gradients are unchanged.
  // 1 (the default) runs every child normally; more segments than children is an error.
  void set_recompute_segments(int segments);
  int recompute_segments() const { return recompute_segments_; }

 private:
  Tensor run_children(size_t begin, size_t end, Tensor x);  // children [begin, end)

  std::vector<ModulePtr> modules_;
  int recompute_segments_ = 1;
};

}  // namespace gs::nn

// The model zoo (layouts documented in zoo.h).
#include "layers/zoo.h"

#include <functional>
#include <map>

#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/container.h"
#include "layers/conv.h"
#include "layers/linear.h"
#include "layers/residual.h"

namespace gs::nn {

namespace {
template <class M, class... Args>
ModulePtr make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

Conv2dOptions conv(int64_t in, int64_t out, int64_t kernel, int64_t padding, bool bias = true) {
  return Conv2dOptions{
      .in_channels = in, .out_channels = out, .kernel_h = kernel, .kernel_w = kernel, .padding = padding, .bias = bias};
}

ModulePtr mlp(int64_t c, int64_t k, int64_t s) {
  return std::make_shared<Sequential>(std::initializer_list<ModulePtr>{make<Flatten>(), make<Linear>(c * s * s, 256),
                                                                       make<ReLU>(), make<Linear>(256, 128),
                                                                       make<ReLU>(), make<Linear>(128, k)});
}

ModulePtr lenet5(int64_t c, int64_t k, int64_t s) {
  int64_t m = (s / 2 - 4) / 2;  // conv(pad 2) keeps S, pool halves, conv 5 takes 4, pool halves
  GS_CHECK(s / 2 - 4 >= 2, "make_model (lenet5): image size %lld is too small (needs at least 12)", (long long)s);
  auto net = std::make_shared<Sequential>();
  net->push_back(make<Conv2d>(conv(c, 6, 5, 2))).push_back(make<ReLU>()).push_back(make<MaxPool2d>(2));
  net->push_back(make<Conv2d>(conv(6, 16, 5, 0))).push_back(make<ReLU>()).push_back(make<MaxPool2d>(2));
  net->push_back(make<Flatten>()).push_back(make<Linear>(16 * m * m, 120)).push_back(make<ReLU>());
  net->push_back(make<Linear>(120, 84)).push_back(make<ReLU>()).push_back(make<Linear>(84, k));
  return net;
}

ModulePtr fashionnet(int64_t c, int64_t k, int64_t s) {
  GS_CHECK(s >= 4, "make_model (fashionnet): image size %lld is too small (needs at least 4)", (long long)s);
  int64_t m = s / 4;
  auto net = std::make_shared<Sequential>();
  net->push_back(make<Conv2d>(conv(c, 32, 3, 1))).push_back(make<BatchNorm2d>(32));
  net->push_back(make<ReLU>()).push_back(make<MaxPool2d>(2));
  net->push_back(make<Conv2d>(conv(32, 64, 3, 1))).push_back(make<BatchNorm2d>(64));
  net->push_back(make<ReLU>()).push_back(make<MaxPool2d>(2));
  net->push_back(make<Flatten>()).push_back(make<Linear>(64 * m * m, 128)).push_back(make<ReLU>());
  net->push_back(make<Linear>(128, k));
  return net;
}

ModulePtr resnet8(int64_t c, int64_t k, int64_t s) {
  GS_CHECK(s >= 8, "make_model (resnet8): image size %lld is too small (needs at least 8)", (long long)s);
  auto net = std::make_shared<Sequential>();
  net->push_back(make<Conv2d>(conv(c, 16, 3, 1, /*bias=*/false))).push_back(make<BatchNorm2d>(16));
  net->push_back(make<ReLU>());
  net->push_back(make<BasicBlock>(16, 16, 1)).push_back(make<BasicBlock>(16, 32, 2));
  net->push_back(make<BasicBlock>(32, 64, 2));
  net->push_back(make<AdaptiveAvgPool2d>(1, 1)).push_back(make<Flatten>()).push_back(make<Linear>(64, k));
  return net;
}

using Builder = std::function<ModulePtr(int64_t, int64_t, int64_t)>;
const std::vector<std::pair<std::string, Builder>>& builders() {
  static const std::vector<std::pair<std::string, Builder>> table = {
      {"mlp", mlp}, {"lenet5", lenet5}, {"fashionnet", fashionnet}, {"resnet8", resnet8}};
  return table;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (auto& [n, b] : builders()) names.push_back(n);
  return names;
}

ModulePtr make_model(const std::string& name, int64_t in_channels, int64_t num_classes, int64_t image_size) {
  GS_CHECK(in_channels > 0 && num_classes > 0 && image_size > 0,
           "make_model (%s): in_channels %lld, num_classes %lld and image_size %lld must be positive", name.c_str(),
           (long long)in_channels, (long long)num_classes, (long long)image_size);
  for (auto& [n, build] : builders()) {
    if (n == name) return build(in_channels, num_classes, image_size);
  }
  std::string known;
  for (auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  GS_CHECK(false, "make_model: unknown model '%s' (known: %s)", name.c_str(), known.c_str());
  return nullptr;
}

}  // namespace gs::nn

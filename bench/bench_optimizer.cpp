// One optimizer step (sgd with momentum, adam, adamw, rprop, rmsprop through make_optimizer,
// the path `gradscope train` takes) over all parameters of each zoo model, gradients fixed.
// Memory-bound: GB/s counts each state tensor read and written once per step; GFLOP/s the
// elementwise arithmetic of the update rule (approximate).
#include <map>

#include "bench/common.h"
#include "layers/zoo.h"
#include "optim/optimizer.h"
#include "tensor/tensor.h"

namespace {

struct Rule {
  const char* name;
  double tensors_moved;  // parameter-sized tensors read + written per step
  double flops;          // per element, approximate
};
// sgd+momentum: p, g, buf read; p, buf written. adam(w): p, g, m, v read; p, m, v written.
// rprop: p, g, prev, step_size read; p, prev, step_size written. rmsprop+momentum: p, g, sq, buf; p, sq, buf.
const Rule kRules[] = {{"sgd", 5, 4}, {"adam", 7, 14}, {"adamw", 7, 15}, {"rprop", 7, 8}, {"rmsprop", 7, 10}};

void bench_step(benchmark::State& state, Rule rule, std::string model_name, int64_t channels, int64_t size) {
  gs::nn::ModulePtr model = gs::nn::make_model(model_name, channels, 10, size);
  std::vector<gs::Tensor> params = model->parameters();
  int64_t elements = 0;
  for (auto& p : params) {
    gs::Tensor grad = gs::randn(p.shape());
    for (int64_t i = 0; i < grad.numel(); ++i) grad.data<float>()[i] *= 1e-3f;  // small, as late in training
    p.set_grad(grad);
    elements += p.numel();
  }
  std::map<std::string, double> hyper{{"lr", 1e-3}};
  if (std::string(rule.name) == "sgd" || std::string(rule.name) == "rmsprop") hyper["momentum"] = 0.9;
  auto optimizer = gs::optim::make_optimizer(rule.name, params, hyper);
  for (auto _ : gs::bench::timed(state)) {
    optimizer->step();
    benchmark::ClobberMemory();
  }
  state.counters["params"] = double(elements);
  gs::bench::set_rates(state, rule.flops * elements, rule.tensors_moved * 4.0 * elements);
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> models[] = {
      {"mlp", {1, 28}}, {"lenet5", {1, 28}}, {"fashionnet", {1, 28}}, {"resnet8", {3, 32}}};
  for (const Rule& rule : kRules) {
    for (const auto& [model, input] : models) {
      std::string name = std::string("optimizer/") + rule.name + "/" + model;
      gs::bench::configure(
          benchmark::RegisterBenchmark(name.c_str(), bench_step, rule, std::string(model), input.first, input.second),
          rule.name, 0);
    }
  }
  return gs::bench::run_main(argc, argv);
}

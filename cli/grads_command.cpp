// `gradscope grads`: one forward and backward on the first N training images in file order
// (default normalisation only: no shuffle, no augmentation), in train mode with mean cross-entropy;
// writes every parameter's gradient under its name, the scalar `loss`, and with --activations each
// module's output and output gradient as act.<path> / actgrad.<path>, to one .safetensors file.
#include <cstdio>
#include <memory>
#include <set>

#include "autograd/tape.h"
#include "cli/commands.h"
#include "io/dataloader.h"
#include "io/safetensors.h"
#include "tensor/raw_ops.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace gs::cli {

void add_grads(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto out = std::make_shared<std::string>();
  auto activations = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "grads",
      "dump the gradients of one forward/backward on the first --batch training images to a .safetensors file");
  train::TrainConfig& c = *config;
  add_model_data_flags(cmd, c);
  cmd->add_option("--weights", c.weights, "weights: a state_dict or checkpoint .safetensors (default: seeded init)");
  cmd->add_option("--seed", c.seed, "seed of the initialisation when no --weights")->capture_default_str();
  cmd->add_option("--batch", c.batch_size, "number of training images, taken in file order")->capture_default_str();
  cmd->add_option("--out", *out, "output .safetensors file")->required();
  cmd->add_flag("--activations", *activations,
                "also write each module's output (act.<path>) and its gradient (actgrad.<path>)");
  register_action(cmd, [config, out, activations] {
    const train::TrainConfig& c = *config;
    auto [batch, model] = first_batch_and_model(c, "grads");

    // Module outputs and their gradients, captured by forward hooks and gradient hooks (read only).
    std::vector<std::pair<std::string, Tensor>> outputs, output_grads;
    std::vector<std::pair<nn::Module*, int>> hooks;
    std::set<std::string> seen;
    if (*activations) {
      for (auto& [path, module] : model->named_modules()) {
        if (path.empty()) continue;
        int id = module->register_forward_hook([&, path](nn::Module&, const Tensor&, const Tensor& y) {
          // A module called twice (a shared ReLU) gets path, path@1, ...
          std::string key = path;
          for (int call = 1; seen.count(key); ++call) key = path + "@" + std::to_string(call);
          seen.insert(key);
          outputs.emplace_back("act." + key, y.detach());
          if (!y.requires_grad()) return;
          Tensor handle = y;
          register_hook(handle, [&, key](const Tensor& g) {
            output_grads.emplace_back("actgrad." + key, raw::clone(g));
            return Tensor();
          });
        });
        hooks.emplace_back(module.get(), id);
      }
    }
    Tensor loss = cross_entropy((*model)(batch.images), batch.labels);
    backward(loss);
    for (auto& [module, id] : hooks) module->remove_forward_hook(id);

    std::vector<std::pair<std::string, Tensor>> tensors;
    for (auto& [name, p] : model->named_parameters()) {
      GS_CHECK(p.grad().defined(), "grads: parameter %s got no gradient", name.c_str());
      tensors.emplace_back(name, p.grad());
    }
    tensors.emplace_back("loss", loss.detach());
    for (auto& t : outputs) tensors.push_back(t);
    for (auto& t : output_grads) tensors.push_back(t);
    for (auto& t : tensors) t.second = t.second.to(Device::cpu());  // the file holds host copies
    io::save_safetensors(*out, tensors);
    std::printf("loss %.6f, %zu tensors -> %s\n", loss.item(), tensors.size(), out->c_str());
  });
}

const CommandRegistration register_grads{60, add_grads};

}  // namespace gs::cli

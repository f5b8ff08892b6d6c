// gs::nn in one include: modules, layers, losses, initialisers, the model zoo and spec files.
//
//   auto net = gs::nn::make_model("fashionnet");            // or load_model_spec("net.json")
//   gs::nn::CrossEntropyLoss criterion;
//   Tensor loss = criterion((*net)(images), labels);         // tape entries carry "0", "4", ...
//   gs::backward(loss);
//   for (auto& [name, p] : net->named_parameters()) std::cout << name << " " << p.grad().describe() << "\n";
//   std::cout << net->repr() << "\n";                       // prints like print(model) in PyTorch
#pragma once
#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/container.h"
#include "layers/conv.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/losses.h"
#include "layers/module.h"
#include "layers/residual.h"
#include "layers/spec.h"
#include "layers/zoo.h"

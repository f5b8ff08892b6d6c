// Per-example predictions and embeddings (train/predict.h).
#include "train/predict.h"

#include <algorithm>
#include <cmath>

#include "io/dataloader.h"
#include "io/safetensors.h"
#include "tensor/raw_ops.h"
#include "train/checkpoint.h"

namespace gs::train {

std::string last_linear_path(nn::Module& model) {
  std::string found;
  bool any = false;
  for (auto& [path, module] : model.named_modules()) {
    if (module->type_name() == "Linear") found = path, any = true;
  }
  GS_CHECK(any, "predict: the model has no Linear layer, so there is no penultimate-layer embedding to capture");
  return found;
}

Predictions predict(nn::Module& model, const io::Dataset& data, std::shared_ptr<io::Transform> transform, int64_t batch,
                    bool capture_embeddings) {
  GS_CHECK(batch > 0, "predict: batch must be positive, got %lld", (long long)batch);
  Predictions p;
  p.num_classes = data.num_classes;
  std::vector<Tensor> captured;
  nn::Module* hooked = nullptr;
  int hook_id = -1;
  if (capture_embeddings) {
    p.embedding_module = last_linear_path(model);
    hooked = p.embedding_module.empty() ? &model : model.child(p.embedding_module).get();
    hook_id = hooked->register_forward_hook([&captured](nn::Module&, const Tensor& input, const Tensor&) {
      const int64_t n = input.shape()[0];
      captured.push_back(raw::clone(raw::reshape(input.detach(), {n, input.numel() / std::max<int64_t>(n, 1)})));
    });
  }
  const bool was_training = model.is_training();
  model.eval();
  try {
    NoGradGuard no_grad;
    io::DataLoader loader(data, {.batch_size = batch, .shuffle = false, .drop_last = false, .seed = 0, .prefetch = 0},
                          transform);
    loader.start_epoch(0);
    io::Batch b;
    while (loader.next(b)) {
      Tensor logits = raw::contiguous(raw::to_dtype(model(b.images), DType::F64));
      GS_CHECK(logits.dim() == 2 && logits.shape()[1] == data.num_classes,
               "predict: the model gives %s for %lld classes", shape_str(logits.shape()).c_str(),
               (long long)data.num_classes);
      const int64_t n = logits.shape()[0], K = logits.shape()[1];
      const double* z = logits.data<double>();
      const std::vector<int64_t> labels = b.labels.to_vector<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        const double* row = z + i * K;
        const int64_t label = labels[size_t(i)];
        GS_CHECK(label >= 0 && label < K, "predict: label %lld outside 0..%lld", (long long)label, (long long)K - 1);
        const double top = *std::max_element(row, row + K);
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += std::exp(row[k] - top);
        const double log_norm = top + std::log(sum);
        const int64_t pred = std::max_element(row, row + K) - row;
        p.labels.push_back(label);
        p.predicted.push_back(pred);
        p.loss.push_back(log_norm - row[label]);
        p.confidence.push_back(std::exp(row[pred] - log_norm));
        p.label_probability.push_back(std::exp(row[label] - log_norm));
      }
    }
  } catch (...) {
    if (hooked) hooked->remove_forward_hook(hook_id);
    model.train(was_training);
    throw;
  }
  if (hooked) hooked->remove_forward_hook(hook_id);
  model.train(was_training);
  if (capture_embeddings) {
    GS_CHECK(!captured.empty(), "predict: the last Linear (%s) never ran", p.embedding_module.c_str());
    p.embeddings = raw::cat(captured, 0);
    GS_CHECK(p.embeddings.shape()[0] == data.size(),
             "predict: the last Linear (%s) saw %lld rows for %lld images (is it called more than once per forward?)",
             p.embedding_module.c_str(), (long long)p.embeddings.shape()[0], (long long)data.size());
  }
  return p;
}

std::string checkpoint_config_json(const std::string& path) {
  io::SafetensorsFile file = io::load_safetensors(path);
  auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kCheckpointFormat) return "";
  auto config = file.metadata.find("config");
  return config == file.metadata.end() ? "" : config->second;
}

}  // namespace gs::train

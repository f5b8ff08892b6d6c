// Per-example predictions of a model over a data set, for `gradscope inspect errors/outliers`:
// predicted class, confidence, loss, the probability of the true label and, on request, the
// penultimate-layer embedding (the input of the last Linear, captured with a forward hook).
//
//   Predictions p = predict(*model, test, default_normalization(spec, train), 256, /*embeddings=*/true);
//   p.loss[i], p.predicted[i], p.embeddings [N, D]
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "io/transforms.h"
#include "layers/module.h"

namespace gs::train {

struct Predictions {
  int64_t num_classes = 0;
  std::vector<int64_t> labels, predicted;
  std::vector<double> loss;               // cross-entropy, -log p(label)
  std::vector<double> confidence;         // p(predicted)
  std::vector<double> label_probability;  // p(label)
  Tensor embeddings;                      // f32 (N, D): input of the last Linear (when asked for)
  std::string embedding_module;           // its module path, e.g. "11"
};

// Runs `model` in eval mode under no_grad over `data` in order (no shuffle, no augmentation; `transform`
// is the normalisation), `batch` images at a time; restores the model's mode. Softmax in f64.
Predictions predict(nn::Module& model, const io::Dataset& data, std::shared_ptr<io::Transform> transform, int64_t batch,
                    bool capture_embeddings);

// Path of the last Linear module in registration order (pre-order); throws when the model has none.
std::string last_linear_path(nn::Module& model);

// The config.json text a training checkpoint carries in its metadata; "" for a plain state_dict.
std::string checkpoint_config_json(const std::string& path);

}  // namespace gs::train

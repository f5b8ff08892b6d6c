// train/predict: per-example loss, confidence and prediction against a hand computation of a tiny
// MLP, the embedding captured at the input of the last Linear, batching and mode restore.
#include <gtest/gtest.h>

#include <cmath>

#include "io/transforms.h"
#include "layers/layers.h"
#include "tensor/random.h"
#include "train/predict.h"

using namespace gs;

TEST(Predict, MatchesHandComputedMlp) {
  const int64_t N = 7, D = 4, Hid = 5, K = 3;
  Generator g(17);
  std::vector<float> px(size_t(N * D));
  for (auto& v : px) v = float(g.uniform());
  io::Dataset data;
  data.images = from_vector(px, {N, 1, 2, 2});
  data.labels = from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 2}, {N});
  data.num_classes = K;
  manual_seed(5);
  auto first = std::make_shared<nn::Linear>(D, Hid), last = std::make_shared<nn::Linear>(Hid, K);
  auto model = std::make_shared<nn::Sequential>(
      std::initializer_list<nn::ModulePtr>{std::make_shared<nn::Flatten>(), first, std::make_shared<nn::ReLU>(), last});
  model->train();
  auto norm = std::make_shared<io::Normalize>(0.5, 0.25);

  train::Predictions p = train::predict(*model, data, norm, /*batch=*/3, /*embeddings=*/true);
  EXPECT_TRUE(model->is_training());  // restored
  EXPECT_EQ(p.embedding_module, "3");
  ASSERT_EQ(p.embeddings.shape(), (Shape{N, Hid}));

  std::vector<float> w1 = first->weight().to_vector<float>(), b1 = first->bias().to_vector<float>();
  std::vector<float> w2 = last->weight().to_vector<float>(), b2 = last->bias().to_vector<float>();
  std::vector<float> emb = p.embeddings.to_vector<float>();
  std::vector<int64_t> labels = data.labels.to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> h(static_cast<size_t>(Hid)), z(static_cast<size_t>(K));
    for (int64_t j = 0; j < Hid; ++j) {
      double s = b1[size_t(j)];
      for (int64_t i = 0; i < D; ++i) s += w1[size_t(j * D + i)] * ((px[size_t(n * D + i)] - 0.5) / 0.25);
      h[size_t(j)] = std::max(0.0, s);
      EXPECT_NEAR(emb[size_t(n * Hid + j)], h[size_t(j)], 1e-5) << n << "," << j;
    }
    for (int64_t k = 0; k < K; ++k) {
      z[size_t(k)] = b2[size_t(k)];
      for (int64_t j = 0; j < Hid; ++j) z[size_t(k)] += w2[size_t(k * Hid + j)] * h[size_t(j)];
    }
    double norm_sum = 0;
    for (double v : z) norm_sum += std::exp(v);
    int64_t best = std::max_element(z.begin(), z.end()) - z.begin();
    EXPECT_EQ(p.labels[size_t(n)], labels[size_t(n)]);
    EXPECT_EQ(p.predicted[size_t(n)], best);
    EXPECT_NEAR(p.loss[size_t(n)], std::log(norm_sum) - z[size_t(labels[size_t(n)])], 1e-5);
    EXPECT_NEAR(p.confidence[size_t(n)], std::exp(z[size_t(best)]) / norm_sum, 1e-6);
    EXPECT_NEAR(p.label_probability[size_t(n)], std::exp(z[size_t(labels[size_t(n)])]) / norm_sum, 1e-6);
  }
  // Without embeddings nothing is captured and the numbers are the same.
  train::Predictions q = train::predict(*model, data, norm, 256, false);
  EXPECT_FALSE(q.embeddings.defined());
  EXPECT_EQ(q.predicted, p.predicted);
}

TEST(Predict, ModelWithoutLinearHasNoEmbedding) {
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{std::make_shared<nn::Flatten>()});
  EXPECT_THROW(train::last_linear_path(*model), Error);
}

// The doctor's verdict rules on hand-made numbers: each check with numbers that must pass it and
// numbers that must fail it, plus the hashing and dead-unit helpers on tensors with known answers.
// The same checks on real (small) models and data are in tests/train/test_doctor.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "inspect/doctor_checks.h"
#include "tensor/tensor.h"

using namespace gs;
using inspect::Verdict;

namespace {
inspect::DataSummary clean_data() {
  inspect::DataSummary d;
  d.train_size = 1000, d.test_size = 200, d.num_classes = 10;
  d.label_min = 0, d.label_max = 9;
  d.class_counts.assign(10, 100);
  d.mean = 0.01, d.std = 1.02;
  return d;
}
}  // namespace

TEST(DoctorChecks, DataCleanIsOk) {
  auto r = inspect::check_data(clean_data());
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;
  EXPECT_TRUE(r.suggestions.empty());
  EXPECT_EQ(r.evidence["duplicates_train_test"], 0);
}

TEST(DoctorChecks, DataFailures) {
  auto d = clean_data();
  d.non_finite = 3;
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Problem);
  d = clean_data();
  d.label_max = 10;  // 10 classes: labels must stop at 9
  auto r = inspect::check_data(d);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("labels span 0..10"), std::string::npos) << r.summary;
  d = clean_data();
  d.mean = 0.29, d.std = 0.35;  // [0,1] pixels, not normalised
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Warning);
  d.mean = 73, d.std = 90;  // raw 0..255 pixels
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Problem);
  d = clean_data();
  d.class_counts[3] = 5;  // 20x imbalance
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Warning);
  d.class_counts[3] = 0;
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Problem);
  EXPECT_NE(inspect::check_data(d).summary.find("class 3 has no training examples"), std::string::npos);
  d.class_counts.assign(10, 0);  // every label is 3: the summary names all nine empty classes
  d.class_counts[3] = 1000;
  r = inspect::check_data(d);
  EXPECT_NE(r.summary.find("9 of the 10 classes have no training examples (0, 1, 2, 4, 5, ...)"), std::string::npos)
      << r.summary;
  d = clean_data();
  d.duplicates_within_train = 5;  // 0.5%: tolerated
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Ok);
  d.duplicates_within_train = 500;  // every image twice
  r = inspect::check_data(d);
  EXPECT_EQ(r.verdict, Verdict::Warning);
  EXPECT_NE(r.summary.find("500 training images (50.0%) repeat an earlier one exactly"), std::string::npos)
      << r.summary;
  d = clean_data();
  d.duplicates_train_test = 1;  // 0.5% of the test set: reported, tolerated
  EXPECT_EQ(inspect::check_data(d).verdict, Verdict::Ok);
  d.duplicates_train_test = 50;  // 25%
  r = inspect::check_data(d);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("50 test images"), std::string::npos) << r.summary;
  // Data with no test set of its own: every "test" image is a training image. That is a missing
  // test set (a warning saying so), not a 100% leak to remove.
  d = clean_data();
  d.test_is_train = true;
  d.duplicates_train_test = d.test_size;
  r = inspect::check_data(d);
  EXPECT_EQ(r.verdict, Verdict::Warning);
  EXPECT_NE(r.summary.find("no test set of its own"), std::string::npos) << r.summary;
  EXPECT_EQ(r.summary.find("also occur in the training set"), std::string::npos) << r.summary;
  EXPECT_EQ(r.evidence["test_is_train"], true);
}

TEST(DoctorChecks, ImageHashesFindExactDuplicatesOnly) {
  Tensor a = from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});  // 4 images of 2 pixels
  Tensor b = from_vector<float>({2, 3, 9, 9, 6, 7.0001f, 0, 1}, {4, 2});
  auto ha = inspect::image_hashes(a), hb = inspect::image_hashes(b);
  EXPECT_EQ(inspect::count_shared(ha, hb), 2);  // {2,3} and {0,1}; {6,7.0001} is not {6,7}
  EXPECT_EQ(inspect::count_repeats(ha), 0);
  Tensor c = from_vector<float>({1, 1, 2, 2, 1, 1, 1, 1}, {4, 2});
  EXPECT_EQ(inspect::count_repeats(inspect::image_hashes(c)), 2);
}

TEST(DoctorChecks, FinalLayer) {
  auto ok = inspect::check_final_layer({"Flatten", "Linear", "ReLU", "Linear"}, true, 0.5);
  EXPECT_EQ(ok.verdict, Verdict::Ok) << ok.summary;
  for (const char* act : {"ReLU", "Sigmoid", "Softmax"}) {
    auto bad = inspect::check_final_layer({"Flatten", "Linear", "ReLU", "Linear", act}, true, 0.0);
    EXPECT_EQ(bad.verdict, Verdict::Problem) << act;
    EXPECT_NE(bad.summary.find(act), std::string::npos) << bad.summary;
    ASSERT_FALSE(bad.suggestions.empty());
    EXPECT_NE(bad.suggestions[0].find("Remove the final"), std::string::npos);
  }
  // Dropout or Flatten after the last Linear is harmless.
  EXPECT_EQ(inspect::check_final_layer({"Linear", "Dropout"}, true, 0.5).verdict, Verdict::Ok);
  // A loss that does not expect logits (not cross-entropy) may take a sigmoid.
  EXPECT_EQ(inspect::check_final_layer({"Linear", "Sigmoid"}, false, 0.0).verdict, Verdict::Ok);
  // No negative among the nonzero outputs: clipped. All outputs 0 (a zero last layer) is -1: unknown.
  EXPECT_EQ(inspect::check_final_layer({"Linear", "ReLU", "Linear"}, true, 0.0).verdict, Verdict::Warning);
  EXPECT_EQ(inspect::check_final_layer({"Linear", "ReLU", "Linear"}, true, -1).verdict, Verdict::Ok);
}

TEST(DoctorChecks, LossAtInit) {
  EXPECT_EQ(inspect::check_loss_at_init(std::log(10.0) + 0.05, 10).verdict, Verdict::Ok);
  EXPECT_EQ(inspect::check_loss_at_init(std::log(10.0) * 1.35, 10).verdict, Verdict::Warning);
  auto high = inspect::check_loss_at_init(9.0, 10);
  EXPECT_EQ(high.verdict, Verdict::Problem);
  EXPECT_NE(high.summary.find("confidently wrong"), std::string::npos);
  EXPECT_EQ(inspect::check_loss_at_init(0.5, 10).verdict, Verdict::Problem);
  EXPECT_EQ(inspect::check_loss_at_init(NAN, 10).verdict, Verdict::Problem);
}

TEST(DoctorChecks, OverfitBatch) {
  auto ok = inspect::check_overfit_batch({2.3, 1.0, 0.2, 0.04}, 32, 200);
  EXPECT_EQ(ok.verdict, Verdict::Ok);
  EXPECT_EQ(ok.evidence["reached_at_step"], 3);
  auto stuck = inspect::check_overfit_batch({2.3, 2.2, 2.1, 2.05}, 32, 3);
  EXPECT_EQ(stuck.verdict, Verdict::Problem);
  EXPECT_NE(stuck.suggestions[0].find("likely a bug in the model, loss or labels"), std::string::npos);
  EXPECT_EQ(inspect::check_overfit_batch({2.3, 0.5, 0.1}, 32, 2).verdict, Verdict::Warning);
  auto bouncing = inspect::check_overfit_batch({2.3, 40, 9, 2.2}, 32, 3);  // the loss jumped: lr first
  EXPECT_EQ(bouncing.verdict, Verdict::Problem);
  EXPECT_NE(bouncing.summary.find("learning rate looks too high"), std::string::npos) << bouncing.summary;
  EXPECT_NE(bouncing.suggestions[0].find("Lower the learning rate"), std::string::npos);
  EXPECT_NE(bouncing.suggestions[1].find("likely a bug in the model, loss or labels"), std::string::npos);
  // Memorised by way of a blow-up (lr 1e3): reached, but the lr is too high for training.
  auto blowup = inspect::check_overfit_batch({2.33, 1.67e14, 6.3e13, 0}, 32, 200);
  EXPECT_EQ(blowup.verdict, Verdict::Warning);
  EXPECT_NE(blowup.summary.find("but it rose to 1.67e+14 on the way"), std::string::npos) << blowup.summary;
  auto nan = inspect::check_overfit_batch({2.3, 50, NAN}, 32, 200);
  EXPECT_EQ(nan.verdict, Verdict::Problem);
  EXPECT_NE(nan.summary.find("non-finite at step 2"), std::string::npos);
}

TEST(DoctorChecks, Gradients) {
  inspect::LayerGradNorms g;
  g.layers = {"0.weight", "2.weight", "4.weight"};
  g.at_init = {0.5, 0.8, 1.2};
  g.after = {0.4, 0.6, 0.9};
  g.total_per_step = {1.5, 1.4, 1.2};
  g.steps = 2;
  EXPECT_EQ(inspect::check_gradients(g).verdict, Verdict::Ok);
  auto vanish = g;
  vanish.at_init = {1e-5, 1e-3, 0.1};  // last / first = 1e4
  vanish.after = {2e-5, 1e-3, 0.1};    // and still 5e3 after the steps
  auto r = inspect::check_gradients(vanish);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("vanishing gradients: 0.weight gets 5e+03x less gradient than 4.weight"), std::string::npos)
      << r.summary;
  // A zero-initialised last layer passes no gradient back at init, and does after one step: not
  // vanishing gradients (the doctor's own loss-at-init advice is a zero last layer).
  auto zero_last = g;
  zero_last.at_init = {0, 0, 0.32};
  zero_last.after = {0.21, 0.36, 2.6};
  r = inspect::check_gradients(zero_last);
  EXPECT_EQ(r.verdict, Verdict::Ok) << r.summary;
  EXPECT_EQ(r.summary.find("inf"), std::string::npos) << r.summary;
  auto never = g;  // no gradient reaches the first layer, at init or after: named, not "infx"
  never.at_init = {0, 0.5, 0.3};
  never.after = {0, 0.5, 0.3};
  r = inspect::check_gradients(never);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("vanishing gradients: 0.weight has gradient norm 0 after 2 steps"), std::string::npos)
      << r.summary;
  auto tiny = g;
  tiny.after = {1e-9, 0.6, 0.9};
  EXPECT_EQ(inspect::check_gradients(tiny).verdict, Verdict::Problem);
  auto explode = g;
  explode.total_per_step = {1.5, 40, 900};
  r = inspect::check_gradients(explode);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("exploding"), std::string::npos) << r.summary;
  auto nan = g;
  nan.after = {NAN, 0.6, 0.9};
  EXPECT_EQ(inspect::check_gradients(nan).verdict, Verdict::Problem);
}

TEST(DoctorChecks, DeadUnitMask) {
  // [N=2, C=3, 2x1]: channel 0 is zero everywhere, channel 1 fires once, channel 2 always.
  Tensor act = from_vector<float>({0, 0, 0, 0.5f, 1, 2, /* image 2 */ 0, 0, 0, 0, 3, 0}, {2, 3, 2, 1});
  std::vector<char> alive;
  inspect::accumulate_alive_units(act, alive);
  EXPECT_NEAR(inspect::dead_fraction(alive), 1.0 / 3, 1e-12);
  Tensor features = from_vector<float>({0, 1, 0, 0, 0, 0}, {2, 3});  // [N=2, F=3]
  std::vector<char> alive2;
  inspect::accumulate_alive_units(features, alive2);
  EXPECT_NEAR(inspect::dead_fraction(alive2), 2.0 / 3, 1e-12);
  Tensor more = from_vector<float>({0, 0, 4}, {1, 3});  // a later batch wakes unit 2
  inspect::accumulate_alive_units(more, alive2);
  EXPECT_NEAR(inspect::dead_fraction(alive2), 1.0 / 3, 1e-12);
}

TEST(DoctorChecks, DeadUnitVerdicts) {
  EXPECT_EQ(inspect::check_dead_units({{"2", 128, 0.02, 0.08}}, 512).verdict, Verdict::Ok);
  EXPECT_EQ(inspect::check_dead_units({{"2", 128, 0.02, 0.3}}, 512).verdict, Verdict::Ok);
  EXPECT_EQ(inspect::check_dead_units({{"2", 128, 0.02, 0.5}}, 512).verdict, Verdict::Warning);
  auto r = inspect::check_dead_units({{"2", 128, 0.02, 0.1}, {"4", 64, 0.95, 0.9}}, 512);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("4 with 95%"), std::string::npos) << r.summary;
  EXPECT_EQ(inspect::check_dead_units({}, 512).verdict, Verdict::Ok);
}

TEST(DoctorChecks, LearningRate) {
  EXPECT_EQ(inspect::check_learning_rate({2e-3, 1e-3, "valley", 0.5, 100}).verdict, Verdict::Ok);
  auto high = inspect::check_learning_rate({10, 1e-3, "valley", 0.5, 80});
  EXPECT_EQ(high.verdict, Verdict::Problem);
  EXPECT_NE(high.summary.find("diverged"), std::string::npos);
  EXPECT_EQ(inspect::check_learning_rate({0.05, 1e-3, "valley", 0, 100}).verdict, Verdict::Warning);  // 50x
  EXPECT_EQ(inspect::check_learning_rate({0.5, 1e-3, "valley", 0, 100}).verdict, Verdict::Problem);   // 500x
  EXPECT_EQ(inspect::check_learning_rate({1e-5, 1e-3, "valley", 0, 100}).verdict, Verdict::Warning);
  EXPECT_EQ(inspect::check_learning_rate({1e-3, 0, "valley", 0, 3}).verdict, Verdict::Warning);
}

TEST(DoctorChecks, Fit) {
  // Healthy: both losses fall, small gap.
  std::vector<inspect::EpochPoint> good = {{0.9, 0.8, 0.7, 0.72}, {0.6, 0.62, 0.8, 0.79}, {0.5, 0.55, 0.83, 0.81}};
  EXPECT_EQ(inspect::check_fit(good, 2.3, 10, 4000).verdict, Verdict::Ok);
  // Overfitting: train keeps falling, validation turns up, gap grows.
  std::vector<inspect::EpochPoint> over = {{0.6, 0.6, 0.8, 0.8}, {0.3, 0.55, 0.9, 0.82}, {0.1, 0.7, 0.97, 0.81}};
  auto r = inspect::check_fit(over, 2.3, 10, 4000);
  EXPECT_EQ(r.verdict, Verdict::Warning);
  EXPECT_NE(r.summary.find("overfitting"), std::string::npos);
  // Chance-level validation: shuffled labels look like this.
  std::vector<inspect::EpochPoint> chance = {{2.3, 2.31, 0.11, 0.1}, {2.25, 2.33, 0.14, 0.09}};
  r = inspect::check_fit(chance, 2.31, 10, 4000);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.suggestions[0].find("labels match the inputs"), std::string::npos) << r.suggestions[0];
  EXPECT_NE(r.summary.find("labels probably do not match"), std::string::npos) << r.summary;
  // The same curve when the lr / gradient / overfit checks failed: those come first.
  r = inspect::check_fit(chance, 2.31, 10, 4000, /*optimisation_sound=*/false);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.suggestions[0].find("too-high learning rate"), std::string::npos);
  // Underfitting: loss still high.
  std::vector<inspect::EpochPoint> under = {{2.0, 1.9, 0.4, 0.45}, {1.6, 1.5, 0.5, 0.55}};
  EXPECT_EQ(inspect::check_fit(under, 2.3, 10, 4000).verdict, Verdict::Warning);
  std::vector<inspect::EpochPoint> nan = {{NAN, NAN, NAN, NAN}};
  EXPECT_EQ(inspect::check_fit(nan, 2.3, 10, 4000).verdict, Verdict::Problem);
  // Two classes, 74% on 300 validation images: 8 standard errors above 50%, not chance (1.5/K called
  // it chance); what the curve shows is overfitting.
  std::vector<inspect::EpochPoint> binary = {{0.3, 0.55, 0.88, 0.73}, {0.1, 0.62, 0.97, 0.74}, {0.02, 0.72, 1, 0.743}};
  r = inspect::check_fit(binary, 0.69, 2, 2700, true, 300);
  EXPECT_EQ(r.verdict, Verdict::Warning) << r.summary;
  EXPECT_NE(r.summary.find("overfitting"), std::string::npos) << r.summary;
  EXPECT_NEAR(r.evidence["at_chance_if_val_acc_below"].get<double>(), 0.5 + 3 * std::sqrt(0.25 / 300), 1e-12);
  // 53% of 300 images of 2 classes is within three standard errors of 50%: chance.
  binary.back().val_acc = 0.53;
  EXPECT_NE(inspect::check_fit(binary, 0.69, 2, 2700, true, 300).summary.find("at chance"), std::string::npos);
  // A training loss that rose is divergence (lr), not underfitting (capacity).
  std::vector<inspect::EpochPoint> diverged = {{40, 50, 0.1, 0.1}, {71.7, 80, 0.1, 0.1}};
  r = inspect::check_fit(diverged, 2.336, 10, 4000, false, 400);
  EXPECT_EQ(r.verdict, Verdict::Problem);
  EXPECT_NE(r.summary.find("the training loss rose (training diverges)"), std::string::npos) << r.summary;
  EXPECT_EQ(r.summary.find("underfitting"), std::string::npos) << r.summary;
  EXPECT_NE(r.suggestions[0].find("Lower the learning rate"), std::string::npos);
}

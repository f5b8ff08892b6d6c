// The training loop end to end on a small stratified subset of Fashion-MNIST: same seed gives
// the same metrics.jsonl, a resumed run continues exactly, checkpoints round-trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/safetensors.h"
#include "layers/spec.h"
#include "layers/zoo.h"
#include "tests/helpers.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace gs;
namespace fs = std::filesystem;

namespace {
bool have_fashion_mnist() { return fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

train::TrainConfig small_config(const std::string& out) {
  train::TrainConfig c;
  c.model = "lenet5";
  c.limit_train = 384;
  c.limit_test = 500;
  c.batch_size = 64;
  c.epochs = 3;
  c.threads = 2;
  c.seed = 7;
  c.augment = "crop:2,flip";
  c.progress = false;
  c.out = out;
  return c;
}

double max_abs_difference(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  EXPECT_EQ(va.size(), vb.size());
  double worst = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]));
  return worst;
}

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("gs_test_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}
}  // namespace

// A fresh run into a used --out removes the earlier run's checkpoints and summary: a best.safetensors
// of another model would otherwise pass for this run's, where this run keeps none. Values that make
// no sense are errors before the directory is touched.
TEST(Trainer, AFreshRunLeavesNoEarlierRunsCheckpoints) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  std::string dir = temp_dir("fresh");
  fs::create_directories(dir);
  for (const char* f : {"best.safetensors", "last.safetensors", "summary.json"}) {
    std::ofstream(dir + "/" + f) << "an earlier run";
  }
  train::TrainConfig bad = small_config(dir);
  bad.clip_value = std::nan("");
  EXPECT_THROW_MSG(train::Trainer(bad).run(), "train: --clip-value must be a finite number >= 0, got nan");
  EXPECT_EQ(read_file(dir + "/best.safetensors"), "an earlier run");  // nothing touched yet
  train::TrainConfig c = small_config(dir);
  c.model = "mlp";
  c.epochs = 1;
  c.augment = "none";
  train::Trainer(c).run();
  EXPECT_FALSE(fs::exists(dir + "/best.safetensors"));
  EXPECT_NE(read_file(dir + "/last.safetensors"), "an earlier run");
  EXPECT_NE(read_file(dir + "/summary.json"), "an earlier run");
  fs::remove_all(dir);
}

// Found by a CLI audit: a zoo model on non-square images, or a model with the wrong number of
// outputs, failed only after the run directory was written (or an epoch later, in the loss).
TEST(Trainer, AModelThatDoesNotFitTheDataIsAnErrorBeforeAnyWork) {
  train::TrainConfig c;
  c.model = "fashionnet";
  nn::ModulePtr model = train::build_model(c, 1, 10, 28);
  train::check_model_fits(*model, c, {4, 1, 28, 28}, 10, Device::cpu());  // fits
  EXPECT_TRUE(model->is_training());
  EXPECT_THROW_MSG(train::check_model_fits(*model, c, {4, 1, 28, 32}, 10, Device::cpu()),
                   "model fashionnet does not take the data's images [1,1,28,32]: linear (9)");
  EXPECT_TRUE(model->is_training());
  EXPECT_THROW_MSG(train::check_model_fits(*model, c, {4, 1, 28, 28}, 5, Device::cpu()),
                   "model fashionnet gives outputs [1,10] for one image; the data fashion-mnist has 5 classes");
}

TEST(Trainer, SameSeedSameMetrics) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  std::string a = temp_dir("a"), b = temp_dir("b");
  train::Trainer(small_config(a)).run();
  train::Trainer(small_config(b)).run();
  std::string ma = read_file(a + "/metrics.jsonl"), mb = read_file(b + "/metrics.jsonl");
  EXPECT_FALSE(ma.empty());
  EXPECT_EQ(ma, mb);
  for (const char* f : {"config.json", "summary.json", "timing.jsonl", "last.safetensors"}) {
    EXPECT_TRUE(fs::exists(a + "/" + f)) << f;
  }
  // No validation set: no best checkpoint, which would be chosen on the test set.
  EXPECT_FALSE(fs::exists(a + "/best.safetensors"));
  EXPECT_TRUE(nlohmann::json::parse(read_file(a + "/summary.json"))["best_val_accuracy"].is_null());
  // A different seed must change the numbers (the check above could not pass by accident).
  train::TrainConfig other = small_config(temp_dir("c"));
  other.seed = 8;
  other.val_fraction = 0.25;
  train::Trainer(other).run();
  EXPECT_NE(ma, read_file(other.out + "/metrics.jsonl"));
  // With one: best.safetensors holds the epoch of highest validation accuracy (the first of ties).
  std::istringstream lines(read_file(other.out + "/metrics.jsonl"));
  double best_val = -1;
  int64_t best_epoch = 0;
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["val_acc"].get<double>() > best_val) best_val = j["val_acc"], best_epoch = j["epoch"];
  }
  EXPECT_EQ(nlohmann::json::parse(read_file(other.out + "/summary.json"))["best_val_accuracy"].get<double>(), best_val);
  nn::ModulePtr model = nn::make_model("lenet5", 1, 10, 28);
  train::CheckpointInfo best = train::load_checkpoint(other.out + "/best.safetensors", *model, nullptr, nullptr);
  EXPECT_EQ(best.epoch, best_epoch);
  EXPECT_EQ(best.best_metric, best_val);
  for (auto& d : {a, b, other.out}) fs::remove_all(d);
}

TEST(Trainer, ResumeContinuesExactly) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  std::string full = temp_dir("full"), part = temp_dir("part");
  train::TrainConfig c = small_config(full);
  c.model = "fashionnet";  // batch norm buffers and AdamW state must both survive the checkpoint
  c.limit_train = 256;
  c.probe_every = 2;       // probes.jsonl must read as one run too
  c.tensorboard = false;
  train::Trainer(c).run();

  // Epochs 1-2, then epoch 3 "crashes" after logging its probes but before its checkpoint counts:
  // resuming from the epoch-2 checkpoint must drop epoch 3's probe lines, not repeat them.
  train::TrainConfig interrupted = c;
  interrupted.out = part;
  train::Trainer(interrupted).run(/*stop_after_epoch=*/2);
  fs::copy_file(part + "/last.safetensors", part + "/epoch2.safetensors");
  train::TrainConfig crashed = interrupted;
  crashed.resume = part + "/epoch2.safetensors";
  train::Trainer(crashed).run();
  train::TrainConfig resumed = interrupted;
  resumed.resume = part + "/epoch2.safetensors";
  train::Trainer(resumed).run();
  EXPECT_EQ(read_file(full + "/metrics.jsonl"), read_file(part + "/metrics.jsonl"));
  std::string probes_full = read_file(full + "/probes.jsonl");
  EXPECT_EQ(std::count(probes_full.begin(), probes_full.end(), '\n'), 3 * 4 / 2);  // 3 epochs x 4 steps / 2
  // The same steps, each once (values may differ in the last bits: multithreaded kernels may sum in
  // another order, and probes print full doubles).
  auto steps_of = [](const std::string& text) {
    std::vector<int64_t> steps;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) steps.push_back(nlohmann::json::parse(line)["step"].get<int64_t>());
    return steps;
  };
  EXPECT_EQ(steps_of(probes_full), (std::vector<int64_t>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(steps_of(read_file(part + "/probes.jsonl")), steps_of(probes_full));
  fs::remove_all(full);
  fs::remove_all(part);
}

TEST(Trainer, ConfigRoundTripAndUnknownKey) {
  train::TrainConfig c = small_config("x");
  c.lr = 0.125;
  c.schedule = "warmup=10+cosine";
  train::TrainConfig back = train::TrainConfig::from_json(c.to_json(), "test");
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"lr\": 0.1, \"learning_rate\": 2}", "cfg.json"),
                   "cfg.json: unknown key 'learning_rate'");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"epochs\": \"ten\"}", "cfg.json"), "'epochs' has the wrong type");
  // Values are taken as what they say: no truncation, no booleans as numbers, no wrapped negatives.
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"batch_size\": 64.7}", "cfg.json"),
                   "cfg.json: key 'batch_size' has the wrong type (expected a whole number, got 64.7)");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"seed\": -1}", "cfg.json"), "expected a whole number >= 0, got -1");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"epochs\": true}", "cfg.json"), "'epochs' has the wrong type");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"epochs\": 1e30}", "cfg.json"), "'epochs' has the wrong type");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"epochs\": 18446744073709551615}", "cfg.json"),
                   "'epochs' has the wrong type");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"lr\": false}", "cfg.json"), "'lr' has the wrong type");
  EXPECT_THROW_MSG(train::TrainConfig::from_json("{\"nesterov\": 1}", "cfg.json"), "'nesterov' has the wrong type");
  // A whole number written as a float (Python's json.dumps of 64.0) is that number; an int is a double.
  train::TrainConfig typed =
      train::TrainConfig::from_json("{\"batch_size\": 64.0, \"lr\": 1, \"seed\": 18446744073709551615}", "c");
  EXPECT_EQ(typed.batch_size, 64);
  EXPECT_EQ(typed.lr, 1.0);
  EXPECT_EQ(typed.seed, UINT64_MAX);
}

TEST(Trainer, ClassWeightsFromTheFlag) {
  io::Dataset d;
  d.labels = from_vector<int64_t>({0, 0, 0, 1, 2, 2}, {6});
  d.num_classes = 3;
  d.class_names = {"cat", "dog", "fox"};
  train::TrainConfig c;
  c.label_smoothing = 0.1;
  EXPECT_FALSE(train::training_loss(c, d, Device::cpu()).weight.defined());  // "none", the default
  EXPECT_EQ(train::training_loss(c, d, Device::cpu()).label_smoothing, 0.1);
  c.class_weights = "balanced";  // n / (C n_c) = 6 / (3 * {3, 1, 2})
  Tensor w = train::training_loss(c, d, Device::cpu()).weight;
  ASSERT_TRUE(w.defined());
  EXPECT_EQ(w.dtype(), DType::F32);
  test::expect_close(w, from_vector<float>({6.0f / 9, 2.0f, 1.0f}, {3}), 1e-7);
  c.class_weights = "1, 2.5,0";
  test::expect_close(train::training_loss(c, d, Device::cpu()).weight, from_vector<float>({1, 2.5f, 0}, {3}), 0);
  auto expect_error = [&](const std::string& spec, const std::string& message) {
    c.class_weights = spec;
    SCOPED_TRACE(spec);
    EXPECT_THROW_MSG(train::training_loss(c, d, Device::cpu()), message);
  };
  expect_error("1,2", "--class-weights: 2 weights for 3 classes in '1,2'");
  expect_error("1,x,2",
               "--class-weights: 'x' is not a weight >= 0 (give none, balanced, or 3 comma-separated weights)");
  expect_error("1,2,3x", "--class-weights: '3x' is not a weight");
  expect_error("-1,1,1", "--class-weights: '-1' is not a weight >= 0");
  expect_error("1,,1", "--class-weights: '' is not a weight >= 0");
  expect_error("1,nan,1", "--class-weights: 'nan' is not a weight >= 0");
  expect_error("0,0,0", "--class-weights: every weight is 0 in '0,0,0'");
  expect_error("balance", "--class-weights: 'balance' is not a weight");
  d.labels = from_vector<int64_t>({0, 0, 2}, {3});
  expect_error("balanced", "--class-weights balanced: class 1 (dog) has no training images");
}

TEST(Trainer, ClassWeightsWeighTheTrainingLoss) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig plain = small_config(temp_dir("plain"));
  plain.epochs = 1;
  plain.limit_train = 380;  // 38 images of each class
  train::TrainConfig balanced = plain, weighted = plain;
  balanced.out = temp_dir("balanced");
  balanced.class_weights = "balanced";  // a balanced set: every weight is 1
  weighted.out = temp_dir("weighted");
  weighted.class_weights = "1,1,1,1,1,1,4,1,1,1";  // Shirt, the class most confused
  for (auto* c : {&plain, &balanced, &weighted}) train::Trainer(*c).run();
  auto run_json = [](const train::TrainConfig& c) { return nlohmann::json::parse(read_file(c.out + "/run.json")); };
  EXPECT_FALSE(run_json(plain).contains("class_weights"));
  EXPECT_EQ(run_json(balanced)["class_weights"], nlohmann::json(std::vector<double>(10, 1.0)));
  EXPECT_EQ(run_json(weighted)["class_weights"][6], 4.0);
  EXPECT_EQ(nlohmann::json::parse(read_file(weighted.out + "/config.json"))["class_weights"], weighted.class_weights);
  // Weights of 1 are the plain loss, bit for bit; a weight of 4 changes the run.
  EXPECT_EQ(read_file(plain.out + "/metrics.jsonl"), read_file(balanced.out + "/metrics.jsonl"));
  EXPECT_NE(read_file(plain.out + "/metrics.jsonl"), read_file(weighted.out + "/metrics.jsonl"));
  for (auto* c : {&plain, &balanced, &weighted}) fs::remove_all(c->out);
}

// lr 0 and no schedule: the weights never move, so the validation accuracy of epoch 1 is never
// beaten and --patience 2 stops after epoch 3, also when the run is resumed in between.
TEST(Trainer, PatienceStopsWhenValidationAccuracyStallsAndSurvivesResume) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig c = small_config(temp_dir("patience"));
  c.model = "mlp";
  c.optimizer = "sgd";
  c.lr = 0;
  c.schedule = "none";
  c.augment = "none";
  c.epochs = 10;
  c.val_fraction = 0.2;
  c.patience = 2;
  train::TrainResult r = train::Trainer(c).run();
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.epochs, 3);
  auto summary = nlohmann::json::parse(read_file(c.out + "/summary.json"));
  EXPECT_EQ(summary["epochs"], 3);
  EXPECT_EQ(summary["best_epoch"], 1);
  EXPECT_EQ(summary["stopped_early"], true);
  std::string metrics = read_file(c.out + "/metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 3);

  train::TrainConfig part = c;
  part.out = temp_dir("patience_resumed");
  train::Trainer(part).run(/*stop_after_epoch=*/1);
  part.resume = part.out + "/last.safetensors";
  train::TrainResult resumed = train::Trainer(part).run();
  EXPECT_TRUE(resumed.stopped_early);
  EXPECT_EQ(resumed.epochs, 3);  // the best epoch came back from the checkpoint
  EXPECT_EQ(read_file(part.out + "/metrics.jsonl"), metrics);

  train::TrainConfig no_val = c;
  no_val.val_fraction = 0;
  no_val.out = temp_dir("patience_no_val");
  EXPECT_THROW_MSG(train::Trainer(no_val).run(),
                   "train: --patience stops on the validation accuracy: it needs a "
                   "validation set (--val-fraction)");
  EXPECT_FALSE(fs::exists(no_val.out));
  for (auto& d : {c.out, part.out}) fs::remove_all(d);
}

// --schedule plateau gets the epoch's metric: with an lr too small to move the training loss by
// the 1e-4 threshold, every epoch after the first is a plateau and (patience 0) divides the lr by 10.
TEST(Trainer, PlateauScheduleFollowsTheEpochMetric) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig c = small_config(temp_dir("plateau"));
  c.model = "mlp";
  c.optimizer = "sgd";
  c.lr = 1e-6;  // (torch's eps rule keeps an lr that a reduction would move by <= 1e-8)
  c.augment = "none";
  c.epochs = 3;
  c.schedule = "plateau:metric=train_loss,patience=0";
  train::Trainer(c).run();
  std::istringstream lines(read_file(c.out + "/metrics.jsonl"));
  std::vector<double> lrs;
  for (std::string line; std::getline(lines, line);) lrs.push_back(nlohmann::json::parse(line)["lr"]);
  ASSERT_EQ(lrs.size(), 3u);
  EXPECT_DOUBLE_EQ(lrs[0], 1e-6);
  EXPECT_DOUBLE_EQ(lrs[1], 1e-7);
  EXPECT_DOUBLE_EQ(lrs[2], 1e-8);
  train::TrainConfig needs_val = c;
  needs_val.schedule = "plateau";
  needs_val.out = temp_dir("plateau_no_val");
  EXPECT_THROW_MSG(train::Trainer(needs_val).run(),
                   "train: --schedule plateau follows val_loss: it needs a validation "
                   "set (--val-fraction), or metric=train_loss");
  EXPECT_FALSE(fs::exists(needs_val.out));
  fs::remove_all(c.out);
}

// --accumulate 5 at batch 32 is batch 160: lenet5 has no batch norm or dropout, so the weights
// match to rounding. 400 images: the last group is 32 + 32 + 16 images, each batch weighed by its
// images (equal weights would give the short batch too much).
TEST(Trainer, AccumulatedBatchesAreOneLargeBatch) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig big = small_config(temp_dir("batch64"));
  big.limit_train = 400;
  big.batch_size = 160;
  big.epochs = 2;
  big.optimizer = "sgd";
  big.lr = 0.05;
  big.augment = "none";
  big.schedule = "cosine";  // counts optimizer steps: 3 per epoch in both runs
  train::TrainConfig acc = big;
  acc.out = temp_dir("accumulated");
  acc.batch_size = 32;
  acc.accumulate = 5;
  train::Trainer(big).run();
  train::Trainer(acc).run();
  nn::ModulePtr a = nn::make_model("lenet5", 1, 10, 28), b = nn::make_model("lenet5", 1, 10, 28);
  train::load_checkpoint(big.out + "/last.safetensors", *a, nullptr, nullptr);
  train::load_checkpoint(acc.out + "/last.safetensors", *b, nullptr, nullptr);
  auto sa = a->state_dict(), sb = b->state_dict();
  for (size_t i = 0; i < sa.size(); ++i) test::expect_close(sb[i].second, sa[i].second, 2e-5, sa[i].first);
  auto line = [](const std::string& path) {
    const std::string text = read_file(path);
    return nlohmann::json::parse(text.substr(0, text.find('\n')));
  };
  auto ja = line(big.out + "/metrics.jsonl"), jb = line(acc.out + "/metrics.jsonl");
  EXPECT_EQ(ja["step"], 3);
  EXPECT_EQ(jb["step"], 3);
  EXPECT_DOUBLE_EQ(ja["lr"].get<double>(), jb["lr"].get<double>());
  EXPECT_NEAR(ja["train_loss"].get<double>(), jb["train_loss"].get<double>(), 1e-5);
  // Without the accumulation the same batches take twice the steps, and the weights differ.
  train::TrainConfig small = acc;
  small.out = temp_dir("batch32");
  small.accumulate = 1;
  train::Trainer(small).run();
  nn::ModulePtr s = nn::make_model("lenet5", 1, 10, 28);
  train::load_checkpoint(small.out + "/last.safetensors", *s, nullptr, nullptr);
  EXPECT_GT(max_abs_difference(s->state_dict()[0].second, sa[0].second), 1e-3);
  train::TrainConfig probed = acc;
  probed.probe_every = 5;
  EXPECT_THROW_MSG(train::Trainer(probed).run(),
                   "train: --probe-every samples one forward and backward per optimizer "
                   "step; it does not take --accumulate 5");
  for (auto& d : {big.out, acc.out, small.out}) fs::remove_all(d);
}

// --sampler balanced draws the training order with replacement: a reproducible run that is not the
// shuffled one, and an unknown sampler is refused before any run directory is made.
TEST(Trainer, BalancedSamplerRuns) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig balanced = small_config(temp_dir("sampler"));
  balanced.epochs = 1;
  balanced.sampler = "balanced";
  train::TrainConfig again = balanced, shuffled = balanced;
  again.out = temp_dir("sampler_again");
  shuffled.out = temp_dir("sampler_shuffled");
  shuffled.sampler = "shuffle";
  for (auto* c : {&balanced, &again, &shuffled}) train::Trainer(*c).run();
  const std::string m = read_file(balanced.out + "/metrics.jsonl");
  EXPECT_EQ(m, read_file(again.out + "/metrics.jsonl"));
  EXPECT_NE(m, read_file(shuffled.out + "/metrics.jsonl"));
  train::TrainConfig bad = balanced;
  bad.sampler = "weighted";
  bad.out = temp_dir("sampler_bad");
  EXPECT_THROW_MSG(train::Trainer(bad).run(), "--sampler must be shuffle, balanced or sequential, got 'weighted'");
  EXPECT_FALSE(fs::exists(bad.out));
  for (auto* c : {&balanced, &again, &shuffled}) fs::remove_all(c->out);
}

// --mixup / --cutmix train on mixed batches: reproducible from the seed, and not the plain run.
TEST(Trainer, MixedBatchesAreReproducible) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig mixed = small_config(temp_dir("mixed"));
  mixed.epochs = 1;
  mixed.mixup = 0.2;
  mixed.cutmix = 1.0;
  train::TrainConfig again = mixed, plain = mixed;
  again.out = temp_dir("mixed_again");
  plain.out = temp_dir("unmixed");
  plain.mixup = plain.cutmix = 0;
  for (auto* c : {&mixed, &again, &plain}) train::Trainer(*c).run();
  const std::string m = read_file(mixed.out + "/metrics.jsonl");
  EXPECT_EQ(m, read_file(again.out + "/metrics.jsonl"));
  EXPECT_NE(m, read_file(plain.out + "/metrics.jsonl"));
  EXPECT_EQ(nlohmann::json::parse(read_file(mixed.out + "/config.json"))["cutmix"], 1.0);
  train::TrainConfig bad = mixed;
  bad.mixup = -1;
  EXPECT_THROW_MSG(train::Trainer(bad).run(), "train: --mixup and --cutmix must be >= 0 (got -1, 1)");
  for (auto* c : {&mixed, &again, &plain}) fs::remove_all(c->out);
}

// --recompute-segments: activation checkpointing changes memory, not numbers: fashionnet (batch norms
// included) trains to the same metrics and weights as the plain run; bad counts are errors.
TEST(Trainer, RecomputedSegmentsTrainExactlyAsThePlainRun) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig plain = small_config(temp_dir("plain_segments"));
  plain.model = "fashionnet";
  plain.epochs = 2;
  train::TrainConfig checked = plain;
  checked.out = temp_dir("recomputed_segments");
  checked.recompute_segments = 3;
  train::Trainer(plain).run();
  train::Trainer(checked).run();
  EXPECT_EQ(read_file(checked.out + "/metrics.jsonl"), read_file(plain.out + "/metrics.jsonl"));
  EXPECT_EQ(nlohmann::json::parse(read_file(checked.out + "/config.json"))["recompute_segments"], 3);
  nn::ModulePtr a = nn::make_model("fashionnet", 1, 10, 28), b = nn::make_model("fashionnet", 1, 10, 28);
  train::load_checkpoint(plain.out + "/last.safetensors", *a, nullptr, nullptr);
  train::load_checkpoint(checked.out + "/last.safetensors", *b, nullptr, nullptr);
  auto sa = a->state_dict(), sb = b->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_EQ(max_abs_difference(sa[i].second, sb[i].second), 0) << sa[i].first;
  train::TrainConfig bad = checked;
  bad.out = temp_dir("bad_segments");
  bad.recompute_segments = 13;
  EXPECT_THROW_MSG(train::Trainer(bad).run(),
                   "--recompute-segments: the model fashionnet has 12 top-level layers, so 1 to 12 segments; got 13");
  bad.recompute_segments = 0;
  EXPECT_THROW_MSG(train::Trainer(bad).run(), "got 0");
  EXPECT_FALSE(fs::exists(bad.out)) << "a bad flag must not leave a run directory";
  for (auto* c : {&plain, &checked, &bad}) fs::remove_all(c->out);
}

// --ema: the average is evaluated and saved as the model; the trained weights ride along for
// --resume, which continues exactly (the average included).
TEST(Trainer, WeightAverageIsEvaluatedSavedAndResumed) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "SKIPPED LOUDLY: Fashion-MNIST not installed (bash scripts/setup.sh)";
  train::TrainConfig full = small_config(temp_dir("ema_full"));
  full.ema = 0.9;
  train::TrainConfig part = full, plain = full;
  part.out = temp_dir("ema_part");
  plain.out = temp_dir("ema_plain");
  plain.ema = 0;
  train::Trainer(full).run();
  train::Trainer(plain).run();
  train::Trainer(part).run(/*stop_after_epoch=*/1);
  part.resume = part.out + "/last.safetensors";
  train::Trainer(part).run();
  const std::string metrics = read_file(full.out + "/metrics.jsonl");
  EXPECT_EQ(read_file(part.out + "/metrics.jsonl"), metrics);
  EXPECT_NE(read_file(plain.out + "/metrics.jsonl"), metrics);
  // "model." is the average, "train_model." the trained weights: they differ.
  io::SafetensorsFile file = io::load_safetensors(full.out + "/last.safetensors");
  const Tensor* avg = nullptr;
  const Tensor* trained = nullptr;
  for (auto& [name, t] : file.tensors) {
    if (name == "model.0.weight") avg = &t;
    if (name == "train_model.0.weight") trained = &t;
  }
  ASSERT_TRUE(avg && trained);
  EXPECT_GT(max_abs_difference(*avg, *trained), 1e-6);
  // The plain state_dict loader takes the average; resuming without --ema is refused.
  nn::ModulePtr model = nn::make_model("lenet5", 1, 10, 28);
  train::load_weights(full.out + "/last.safetensors", *model);
  test::expect_close(model->state_dict()[0].second, *avg, 0);
  train::TrainConfig no_ema = part;
  no_ema.ema = 0;
  no_ema.epochs = 4;
  EXPECT_THROW_MSG(train::Trainer(no_ema).run(),
                   "holds a weight average (train --ema) besides the trained weights: "
                   "resume it with --ema");
  for (auto& d : {full.out, part.out, plain.out}) fs::remove_all(d);
}

TEST(Checkpoint, RoundTripRestoresWeightsAndRng) {
  std::string dir = temp_dir("ckpt");
  fs::create_directories(dir);
  manual_seed(3);
  nn::ModulePtr model = nn::make_model("mlp");
  auto rng_before = default_generator().state();
  train::save_checkpoint(dir + "/c.safetensors", *model, nullptr, nullptr, {5, 16.0 / 19, "{}"});
  default_generator().next_u64();
  manual_seed(99);
  nn::ModulePtr other = nn::make_model("mlp");
  train::CheckpointInfo info = train::load_checkpoint(dir + "/c.safetensors", *other, nullptr, nullptr);
  EXPECT_EQ(info.epoch, 5);
  EXPECT_EQ(info.best_metric, 16.0 / 19);  // exactly: a resumed run compares accuracies with it
  EXPECT_EQ(default_generator().state(), rng_before);
  auto sa = model->state_dict(), sb = other->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) test::expect_close(sb[i].second, sa[i].second, 0, sa[i].first);
  // A plain state_dict is not a training checkpoint: --resume says so and points to --weights.
  EXPECT_THROW_MSG(train::load_checkpoint(dir + "/missing.safetensors", *other, nullptr, nullptr), "missing.safetensors");
  // Metadata that is not a number is an error naming the file and key (it was std::stoll's "stoll").
  nn::NamedTensors weights;
  for (auto& [name, t] : model->state_dict()) weights.emplace_back("model." + name, t);
  io::save_safetensors(dir + "/bad.safetensors", weights,
                       {{"format", train::kCheckpointFormat}, {"epoch", "five"}, {"best_metric", "0.5"}});
  EXPECT_THROW_MSG(train::load_checkpoint(dir + "/bad.safetensors", *other, nullptr, nullptr),
                   "bad.safetensors: metadata 'epoch' is not a number ('five')");
  for (const char* epoch : {"nan", "1e300", "-3", "1.5"}) {
    io::save_safetensors(dir + "/epoch.safetensors", weights,
                         {{"format", train::kCheckpointFormat}, {"epoch", epoch}, {"best_metric", "0.5"}});
    EXPECT_THROW_MSG(train::load_checkpoint(dir + "/epoch.safetensors", *other, nullptr, nullptr),
                     format("epoch.safetensors: metadata 'epoch' is not an epoch count ('%s')", epoch));
  }
  // A checkpoint of another model names the checkpoint as well as the key and shapes.
  nn::ModulePtr lenet = nn::make_model("lenet5");
  EXPECT_THROW_MSG(train::load_checkpoint(dir + "/c.safetensors", *lenet, nullptr, nullptr),
                   "checkpoint " + dir + "/c.safetensors: load_state_dict (Sequential): ");
  // An rng state that is not hex is an error naming the file (it was std::stoull's "stoull").
  io::save_safetensors(
      dir + "/rng.safetensors", weights,
      {{"format", train::kCheckpointFormat}, {"epoch", "1"}, {"best_metric", "0.5"}, {"rng", std::string(64, 'z')}});
  EXPECT_THROW_MSG(train::load_checkpoint(dir + "/rng.safetensors", *other, nullptr, nullptr),
                   "rng.safetensors: rng state");
  fs::remove_all(dir);
}

TEST(Checkpoint, RecordsTheModelSoAnEditedOneIsNamed) {
  std::string dir = temp_dir("ckpt_model");
  fs::create_directories(dir);
  const char* relu = R"({"layers": [{"type": "flatten"}, {"type": "linear", "in": 4, "out": 3}, {"type": "relu"},
                                    {"type": "linear", "in": 3, "out": 2}]})";
  const char* tanh = R"({"layers": [{"type": "flatten"}, {"type": "linear", "in": 4, "out": 3}, {"type": "tanh"},
                                    {"type": "linear", "in": 3, "out": 2}]})";
  nn::ModulePtr a = nn::model_from_spec_json(relu), b = nn::model_from_spec_json(tanh);
  train::CheckpointInfo info{1, -1, "{}", 0, a->repr()};
  train::save_checkpoint(dir + "/c.safetensors", *a, nullptr, nullptr, info);
  EXPECT_EQ(train::load_checkpoint(dir + "/c.safetensors", *b, nullptr, nullptr).model_repr, a->repr());
  EXPECT_EQ(train::model_difference(a->repr(), a->repr()), "");
  EXPECT_EQ(train::model_difference(a->repr(), b->repr()),
            "line 4 of the model's layers: '(2): ReLU()' in the checkpoint, '(2): Tanh()' here");
  // The weights fit the edited model: they load, with a warning naming the difference.
  testing::internal::CaptureStderr();
  train::load_weights(dir + "/c.safetensors", *b);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("warning: weights " + dir + "/c.safetensors were trained in another model (line 4"),
            std::string::npos)
      << err;
  test::expect_close(b->state_dict()[0].second, a->state_dict()[0].second, 0, "weights");
  testing::internal::CaptureStderr();
  train::load_weights(dir + "/c.safetensors", *nn::model_from_spec_json(relu));  // the same model: no word
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  fs::remove_all(dir);
}

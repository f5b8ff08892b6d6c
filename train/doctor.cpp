// The doctor's measuring runs: fresh seeded models, short trainings, hooks that read activations.
// The verdict rules are in inspect/doctor_checks.cpp; the report files in train/doctor_report.cpp.
#include "train/doctor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>

#include "autograd/ops.h"
#include "inspect/stats.h"
#include "io/dataloader.h"
#include "optim/clip.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "train/checkpoint.h"
#include "train/exclude_list.h"
#include "train/trainer.h"

namespace gs::train {

namespace {

std::shared_ptr<io::Transform> compose(const std::shared_ptr<io::Transform>& augment,
                                       const std::shared_ptr<io::Transform>& norm) {
  if (!augment) return norm;
  return std::make_shared<io::Compose>(std::vector<std::shared_ptr<io::Transform>>{augment, norm});
}

bool is_leaf(nn::Module& m) { return m.named_children().empty(); }

// Dropout off, everything else (batch norm) in train mode.
void dropout_off(nn::Module& model) {
  for (auto& [path, m] : model.named_modules()) {
    if (m->type_name() == "Dropout") m->eval();
  }
}

std::unique_ptr<optim::Optimizer> make_optimizer_for(const TrainConfig& c, nn::Module& model) {
  return optim::make_optimizer(c.optimizer, model.parameters(), c.optimizer_hyper());
}

void clip(const TrainConfig& c, nn::Module& model) {
  if (c.clip_value > 0) optim::clip_grad_value(model.parameters(), c.clip_value);
  if (c.clip_norm > 0) optim::clip_grad_norm(model.parameters(), c.clip_norm);
}

double grad_norm(const Tensor& p) {
  if (!p.grad().defined()) return 0;
  inspect::TensorStats s = inspect::tensor_stats(p.grad(), false);
  return s.non_finite() ? NAN : s.norm;
}

// A fresh model from the setup, on the setup's device.
nn::ModulePtr fresh_model(const DoctorSetup& setup) {
  nn::ModulePtr model = setup.make_model();
  model->to(setup.device);
  return model;
}

// The sample of training images (stratified), normalised only, in batches of 256.
io::Dataset sample_of(const DoctorSetup& setup, const DoctorOptions& options) {
  return io::stratified_subset(setup.train, std::max<int64_t>(options.sample, 1), setup.config.seed + 7);
}

}  // namespace

DoctorSetup make_doctor_setup(const TrainConfig& config, io::Dataset train, io::Dataset test,
                              std::shared_ptr<io::Transform> normalization, std::function<nn::ModulePtr()> make_model,
                              const DoctorOptions& options) {
  GS_CHECK(options.sample > 0 && options.overfit_batch > 0 && options.overfit_steps > 0 && options.grad_steps > 0 &&
               options.lr_steps > 1 && options.fit_images > 0 && options.val_images > 0 && options.fit_epochs > 0,
           "doctor: --sample, --overfit-batch, --overfit-steps, --grad-steps, --fit-images, --val-images and "
           "--fit-epochs must be positive and --lr-steps > 1");
  GS_CHECK(train.size() >= 2, "doctor: the training set has %lld images; need at least 2", (long long)train.size());
  DoctorSetup s;
  s.config = config;
  s.device = run_device(config);  // a CUDA device needs a GPU: checked here, before anything runs
  if (options.shuffle_labels) {
    // The planted bug: a seeded permutation of the training labels (the images stay in place).
    Tensor labels = raw::clone(train.labels);
    int64_t* l = labels.data<int64_t>();
    Generator gen(config.seed + 1234);
    for (int64_t i = train.size() - 1; i > 0; --i) std::swap(l[i], l[gen.randint(0, i + 1)]);
    train.labels = labels;
  }
  s.train = std::move(train);
  s.test = std::move(test);
  // Validation: held out of the training set, stratified; the fit subset from the rest.
  const double fraction = std::clamp(double(options.val_images) / double(s.train.size()), 1e-6, 0.5);
  auto [rest, val] = io::split_validation(s.train, fraction, config.seed);
  if (config.limit_train > 0 && config.limit_train < rest.size())
    rest = io::stratified_subset(rest, config.limit_train, config.seed);
  s.fit_train = options.fit_images < rest.size() ? io::stratified_subset(rest, options.fit_images, config.seed) : rest;
  s.val = options.val_images < val.size() ? io::stratified_subset(val, options.val_images, config.seed) : val;
  GS_CHECK(s.val.size() > 0 && s.fit_train.size() > 0, "doctor: no images left for the fit run (%lld train, %lld val)",
           (long long)s.fit_train.size(), (long long)s.val.size());
  s.normalization = std::move(normalization);
  s.augmentation = io::make_augmentation(config.augment);
  s.make_model = std::move(make_model);
  s.loss = training_loss(config, s.fit_train, s.device);  // checks --class-weights before any run
  return s;
}

DoctorSetup make_doctor_setup(const TrainConfig& config, const DoctorOptions& options) {
  io::Dataset train = load_training_set(config);  // minus --exclude-list, as train does
  io::Dataset test = io::load_dataset(config.data, false);
  auto norm = default_normalization(config.data, train);
  const Shape shape = train.images.shape();
  const int64_t classes = train.num_classes;
  auto make_model = [config, shape, classes] {
    manual_seed(config.seed);
    nn::ModulePtr model = build_model(config, shape[1], classes, shape[2]);
    if (!config.weights.empty()) load_weights(config.weights, *model);
    model->train();
    return model;
  };
  // A model that does not take the data's images is an error naming both, before any check runs.
  check_model_fits(*make_model(), config, shape, classes, Device::cpu());
  return make_doctor_setup(config, std::move(train), std::move(test), norm, make_model, options);
}

// ---------------- data ----------------

inspect::DataSummary measure_data(const DoctorSetup& setup, const DoctorOptions& options) {
  inspect::DataSummary d;
  d.train_size = setup.train.size();
  d.test_size = setup.test.size();
  d.num_classes = setup.train.num_classes;
  d.test_is_train = setup.test.test_is_train;
  // Data with no test set of its own gives the training images as its test set: they count once.
  const io::Dataset empty;
  const io::Dataset* test = d.test_is_train ? &empty : &setup.test;
  for (const io::Dataset* set : {&setup.train, test}) {
    if (set->size() && !inspect::all_finite(set->images))
      d.non_finite += inspect::tensor_stats(set->images, false).non_finite();
  }
  d.label_min = INT64_MAX;
  d.label_max = INT64_MIN;
  d.class_counts.assign(size_t(std::max<int64_t>(d.num_classes, 0)), 0);
  for (const io::Dataset* set : {&setup.train, test}) {
    if (!set->size()) continue;
    const Tensor labels = raw::contiguous(set->labels);
    const int64_t* l = labels.data<int64_t>();
    for (int64_t i = 0; i < set->size(); ++i) {
      d.label_min = std::min(d.label_min, l[i]);
      d.label_max = std::max(d.label_max, l[i]);
      if (set == &setup.train && l[i] >= 0 && l[i] < d.num_classes) ++d.class_counts[size_t(l[i])];
    }
  }
  // Inputs as the network sees them: the training transform (augmentation, then normalisation).
  io::Dataset sample = sample_of(setup, options);
  io::DataLoader loader(sample, {.batch_size = 256, .shuffle = false, .seed = setup.config.seed, .prefetch = 0},
                        compose(setup.augmentation, setup.normalization));
  double sum = 0, sum_sq = 0;
  int64_t count = 0;
  io::Batch batch;
  loader.start_epoch(0);
  while (loader.next(batch)) {
    inspect::TensorStats s = inspect::tensor_stats(batch.images, false);
    sum += s.sum;
    sum_sq += s.sum_squares;
    count += s.finite;
    d.non_finite += s.non_finite();
  }
  d.mean = count ? sum / double(count) : NAN;
  d.std = count ? std::sqrt(std::max(0.0, sum_sq / double(count) - d.mean * d.mean)) : NAN;
  std::vector<uint64_t> train_hashes = inspect::image_hashes(setup.train.images);
  d.duplicates_within_train = inspect::count_repeats(train_hashes);
  if (test->size())
    d.duplicates_train_test = inspect::count_shared(train_hashes, inspect::image_hashes(setup.test.images));
  return d;
}

// ---------------- init pass: final layer, loss at init, activations, dead units at init ----------------

InitPass measure_init(const DoctorSetup& setup, const DoctorOptions& options) {
  InitPass p;
  nn::ModulePtr model = fresh_model(setup);
  model->train();
  io::Dataset sample = sample_of(setup, options);
  io::DataLoader loader(sample, {.batch_size = 256, .shuffle = false, .seed = setup.config.seed, .prefetch = 0},
                        setup.normalization);
  // Per leaf call site (path@k for a module called k times in one forward): summed statistics.
  struct Acc {
    std::string path, type;
    double sum = 0, sum_sq = 0;
    int64_t count = 0, zeros = 0;
  };
  std::vector<Acc> acc;
  std::map<std::string, int> calls;  // calls of each path in the current forward
  bool first_forward = true;
  std::vector<std::pair<nn::Module*, int>> hooks;
  for (auto& [path, module] : model->named_modules()) {
    if (path.empty() || !is_leaf(*module)) continue;
    int id = module->register_forward_hook([&, path](nn::Module& m, const Tensor&, const Tensor& y) {
      const int call = calls[path]++;
      const std::string key = call ? path + "@" + std::to_string(call) : path;
      if (first_forward) {
        p.leaf_types.push_back(m.type_name());
        acc.push_back({key, m.type_name()});
      }
      auto it = std::find_if(acc.begin(), acc.end(), [&](const Acc& a) { return a.path == key; });
      if (it == acc.end()) return;
      inspect::TensorStats s = inspect::tensor_stats(y, false);
      it->sum += s.sum;
      it->sum_sq += s.sum_squares;
      it->count += s.finite;
      it->zeros += s.zeros;
    });
    hooks.emplace_back(module.get(), id);
  }
  double loss_sum = 0, negatives = 0, nonzero = 0;
  {
    NoGradGuard no_grad;
    io::Batch batch;
    loader.start_epoch(0);
    while (loader.next(batch)) {
      calls.clear();
      Tensor logits = (*model)(batch.images.to(setup.device));
      first_forward = false;
      loss_sum += cross_entropy(logits, batch.labels.to(setup.device), {.reduction = Reduction::Sum}).item();
      Tensor c = raw::contiguous(inspect::on_host(logits));
      const float* v = c.data<float>();
      for (int64_t i = 0; i < c.numel(); ++i) negatives += v[i] < 0, nonzero += v[i] != 0;
    }
  }
  for (auto& [m, id] : hooks) m->remove_forward_hook(id);
  p.loss = loss_sum / double(sample.size());
  // Of the nonzero outputs: a zero-initialised last layer (all 0) is not a clipping activation.
  p.negative_output_fraction = nonzero ? negatives / nonzero : -1;
  for (const Acc& a : acc) {
    double mean = a.count ? a.sum / double(a.count) : NAN;
    double std = a.count ? std::sqrt(std::max(0.0, a.sum_sq / double(a.count) - mean * mean)) : NAN;
    p.activations.push_back({a.path, a.type, mean, std, a.count ? double(a.zeros) / double(a.count) : 0});
  }
  measure_dead_units(*model, true, setup, options, p.relu_layers, false);
  return p;
}

void measure_dead_units(nn::Module& model, bool train_mode, const DoctorSetup& setup, const DoctorOptions& options,
                        std::vector<inspect::DeadUnitLayer>& layers, bool after_training) {
  const bool was_training = model.is_training();
  model.train(train_mode);
  if (train_mode) dropout_off(model);
  io::Dataset sample = sample_of(setup, options);
  io::DataLoader loader(sample, {.batch_size = 256, .shuffle = false, .seed = setup.config.seed, .prefetch = 0},
                        setup.normalization);
  std::vector<std::pair<std::string, std::vector<char>>> alive;  // per ReLU call site, in forward order
  std::map<std::string, int> calls;
  std::vector<std::pair<nn::Module*, int>> hooks;
  for (auto& [path, module] : model.named_modules()) {
    if (module->type_name() != "ReLU") continue;
    int id = module->register_forward_hook([&, path](nn::Module&, const Tensor&, const Tensor& y) {
      const int call = calls[path]++;
      const std::string key = call ? path + "@" + std::to_string(call) : path;
      auto it = std::find_if(alive.begin(), alive.end(), [&](const auto& a) { return a.first == key; });
      if (it == alive.end()) it = alive.emplace(alive.end(), key, std::vector<char>{});
      inspect::accumulate_alive_units(y, it->second);
    });
    hooks.emplace_back(module.get(), id);
  }
  {
    NoGradGuard no_grad;
    io::Batch batch;
    loader.start_epoch(0);
    while (loader.next(batch)) {
      calls.clear();
      (void)model(batch.images.to(setup.device));
    }
  }
  for (auto& [m, id] : hooks) m->remove_forward_hook(id);
  model.train(was_training);
  for (const auto& [key, mask] : alive) {
    auto it = std::find_if(layers.begin(), layers.end(), [&](const auto& l) { return l.layer == key; });
    if (it == layers.end()) {
      layers.push_back({key, int64_t(mask.size())});
      it = std::prev(layers.end());
    }
    (after_training ? it->dead_after : it->dead_at_init) = inspect::dead_fraction(mask);
  }
}

// ---------------- overfit one batch ----------------

std::vector<double> measure_overfit_batch(const DoctorSetup& setup, const DoctorOptions& options) {
  nn::ModulePtr model = fresh_model(setup);
  model->train();
  dropout_off(*model);
  const int64_t n = std::min(options.overfit_batch, setup.fit_train.size());
  io::DataLoader loader(setup.fit_train, {.batch_size = n, .shuffle = true, .seed = setup.config.seed, .prefetch = 0},
                        setup.normalization);  // no augmentation: the same batch every step
  io::Batch batch;
  loader.start_epoch(0);
  loader.next(batch);
  const Tensor images = batch.images.to(setup.device), labels = batch.labels.to(setup.device);
  auto optimizer = make_optimizer_for(setup.config, *model);
  std::vector<double> losses;
  for (int64_t step = 0; step <= options.overfit_steps; ++step) {
    Tensor loss = cross_entropy((*model)(images), labels);
    const double l = loss.item();
    losses.push_back(l);
    if (!std::isfinite(l) || l <= inspect::kOverfitLoss || step == options.overfit_steps) break;
    optimizer->zero_grad();
    backward(loss);
    clip(setup.config, *model);
    optimizer->step();
  }
  return losses;
}

// ---------------- gradients ----------------

inspect::LayerGradNorms measure_gradients(const DoctorSetup& setup, const DoctorOptions& options) {
  nn::ModulePtr model = fresh_model(setup);
  model->train();
  inspect::LayerGradNorms g;
  std::vector<Tensor> weights;
  for (auto& [name, p] : model->named_parameters()) {
    if (p.dim() >= 2) g.layers.push_back(name), weights.push_back(p);
  }
  GS_CHECK(!weights.empty(), "doctor: the model has no weight matrices or kernels to check gradients of");
  io::DataLoader loader(
      setup.fit_train,
      {.batch_size = setup.config.batch_size, .shuffle = true, .seed = setup.config.seed, .prefetch = 0},
      compose(setup.augmentation, setup.normalization));
  auto optimizer = make_optimizer_for(setup.config, *model);
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  for (int64_t step = 0; step <= options.grad_steps; ++step) {
    io::Batch batch;
    if (!loader.next(batch)) {
      loader.start_epoch(++epoch);
      loader.next(batch);
    }
    optimizer->zero_grad();
    Tensor loss = cross_entropy((*model)(batch.images.to(setup.device)), batch.labels.to(setup.device), setup.loss);
    backward(loss);
    std::vector<double> norms;
    double total_sq = 0;
    for (const Tensor& w : weights) {
      norms.push_back(grad_norm(w));
      total_sq += norms.back() * norms.back();
    }
    g.total_per_step.push_back(std::sqrt(total_sq));
    if (step == 0) g.at_init = norms;
    g.after = norms;
    g.steps = step;
    if (!std::isfinite(total_sq) || step == options.grad_steps) break;
    clip(setup.config, *model);
    optimizer->step();
  }
  return g;
}

// ---------------- learning rate ----------------

LRFinderResult measure_lr(const DoctorSetup& setup, const DoctorOptions& options) {
  nn::ModulePtr model = fresh_model(setup);
  model->train();
  auto optimizer = make_optimizer_for(setup.config, *model);
  io::DataLoader loader(
      setup.fit_train,
      {.batch_size = setup.config.batch_size, .shuffle = true, .seed = setup.config.seed, .prefetch = 0},
      compose(setup.augmentation, setup.normalization));
  LRFinderOptions o;
  o.num_steps = options.lr_steps;
  return lr_find_on_loader(*model, *optimizer, loader, setup.config, o);
}

// ---------------- fit ----------------

FitRun measure_fit(const DoctorSetup& setup, const DoctorOptions& options) {
  FitRun run;
  run.train_images = setup.fit_train.size();
  run.val_images = setup.val.size();
  run.model = fresh_model(setup);
  nn::Module& model = *run.model;
  model.train();
  const TrainConfig& c = setup.config;
  io::DataLoader loader(setup.fit_train, {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed},
                        compose(setup.augmentation, setup.normalization));
  io::DataLoader val_loader(setup.val, {.batch_size = 256, .shuffle = false, .seed = c.seed, .prefetch = 0},
                            setup.normalization);
  auto optimizer = make_optimizer_for(c, model);
  auto scheduler = optim::make_scheduler(c.schedule, *optimizer, loader.batches_per_epoch(), options.fit_epochs);
  bool finite = true;
  for (int64_t epoch = 1; epoch <= options.fit_epochs && finite; ++epoch) {
    model.train();
    loader.start_epoch(epoch);
    io::Batch batch;
    double loss_sum = 0;
    int64_t seen = 0, correct = 0;
    while (loader.next(batch)) {
      Tensor logits = model(batch.images.to(setup.device));
      Tensor loss = cross_entropy(logits, batch.labels.to(setup.device), setup.loss);
      const double l = loss.item();
      if (run.step_losses.empty()) run.initial_loss = l;
      run.step_losses.push_back(l);
      if (!std::isfinite(l)) {
        finite = false;
        break;
      }
      optimizer->zero_grad();
      backward(loss);
      clip(c, model);
      optimizer->step();
      if (scheduler) scheduler->step();
      const int64_t n = batch.labels.numel();
      loss_sum += l * double(n);
      seen += n;
      auto pred = argmax(logits, 1).to_vector<int64_t>();
      auto labels = batch.labels.to_vector<int64_t>();
      for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == labels[i];
    }
    inspect::EpochPoint point;
    if (finite) {
      point.train_loss = loss_sum / double(std::max<int64_t>(seen, 1));
      point.train_acc = double(correct) / double(std::max<int64_t>(seen, 1));
      EvalResult v = evaluate(model, val_loader);
      point.val_loss = v.loss;
      point.val_acc = v.accuracy;
      const std::string metric = scheduler->metric();  // plateau, as the trainer feeds it
      if (!metric.empty()) scheduler->observe(epoch_metric(metric, point.train_loss, point.train_acc, v));
    } else {
      point = {NAN, NAN, NAN, NAN};
    }
    run.curve.push_back(point);
  }
  return run;
}

// ---------------- all of it ----------------

DoctorReport run_doctor(const DoctorSetup& setup, const DoctorOptions& options) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  DoctorReport report;
  const TrainConfig& c = setup.config;
  report.model = c.model_spec.empty() ? c.model : c.model_spec;
  report.data = c.data;
  report.device = setup.device.str();
  const int total = 8;
  auto t = clock::now();
  auto done = [&](const inspect::CheckResult& r) {
    report.checks.push_back(r);
    if (options.progress) {
      double secs = std::chrono::duration<double>(clock::now() - t).count();
      std::fprintf(stderr, "[%zu/%d] %-26s %-8s %5.1fs  %s\n", report.checks.size(), total, r.title.c_str(),
                   inspect::verdict_name(r.verdict).c_str(), secs, r.summary.c_str());
    }
    t = clock::now();
  };
  const int64_t K = setup.train.num_classes;
  done(inspect::check_data(measure_data(setup, options)));
  report.init = measure_init(setup, options);
  done(inspect::check_final_layer(report.init.leaf_types, true, report.init.negative_output_fraction));
  done(inspect::check_loss_at_init(report.init.loss, K, c.label_smoothing));
  report.overfit_losses = measure_overfit_batch(setup, options);
  done(inspect::check_overfit_batch(report.overfit_losses, std::min(options.overfit_batch, setup.fit_train.size()),
                                    options.overfit_steps));
  report.gradients = measure_gradients(setup, options);
  done(inspect::check_gradients(report.gradients));
  report.lr_find = measure_lr(setup, options);
  inspect::LRRangeSummary lr{
      c.lr, report.lr_find.suggested_lr, report.lr_find.method,
      report.lr_find.diverged && !report.lr_find.points.empty() ? report.lr_find.points.back().lr : 0,
      int64_t(report.lr_find.points.size())};
  done(inspect::check_learning_rate(lr));
  report.fit = measure_fit(setup, options);
  bool sound = true;  // overfit one batch, gradients and learning rate
  for (const auto& check : report.checks) {
    if (check.name == "overfit_batch" || check.name == "gradients" || check.name == "learning_rate")
      sound = sound && check.verdict != inspect::Verdict::Problem;
  }
  done(inspect::check_fit(report.fit.curve, report.fit.initial_loss, K, report.fit.train_images, sound,
                          report.fit.val_images));
  // Dead units: at init (from the init pass) and after the short run (eval mode, as deployed).
  report.dead_units = report.init.relu_layers;
  measure_dead_units(*report.fit.model, false, setup, options, report.dead_units, true);
  done(inspect::check_dead_units(report.dead_units, std::min(options.sample, setup.train.size())));
  report.seconds = std::chrono::duration<double>(clock::now() - start).count();
  return report;
}

}  // namespace gs::train

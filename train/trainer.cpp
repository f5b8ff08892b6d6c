// The training loop.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "autograd/ops.h"
#include "inspect/probes.h"
#include "io/mix.h"
#include "io/safetensors.h"
#include "io/tensorboard.h"
#include "io/transforms.h"
#include "kernels/cpu/all_tables.h"
#include "kernels/registry.h"
#include "layers/batchnorm.h"
#include "layers/container.h"
#include "layers/spec.h"
#include "layers/zoo.h"
#include "optim/clip.h"
#include "optim/ema.h"
#include "optim/lr_scheduler.h"
#include "optim/optimizer.h"
#include "tensor/cuda.h"
#include "tensor/parse.h"
#include "tensor/random.h"
#include "tensor/raw_ops.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/exclude_list.h"
#include "train/lr_finder.h"
#include "train/progress.h"
#include "train/run_info.h"

#ifdef GS_OPENMP
#include <omp.h>
#endif

namespace gs::train {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::vector<Tensor> named_tensors(const nn::NamedTensors& named) {
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : named) tensors.push_back(t);
  return tensors;
}
}  // namespace

int apply_runtime_settings(int threads, const std::string& kernels) {
  try {
    if (!kernels.empty()) kernels::parse_selection(kernels);
    kernels::check_selection_against_every_table();  // GS_KERNELS too
  } catch (const std::invalid_argument& e) {
    throw Error(e.what());  // names the selection, GS_KERNELS and --kernel
  }
#ifdef GS_OPENMP
  if (threads > 0) omp_set_num_threads(threads);
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void apply_sync_bn(const TrainConfig& c, nn::Module& model) {
  if (!c.sync_bn) return;
  GS_CHECK(nn::convert_sync_batchnorm(model, &ProcessGroup::world()) > 0, "--sync-bn: model '%s' has no batch norm",
           (c.model_spec.empty() ? c.model : c.model_spec).c_str());
}

PenalisedLoss add_grad_penalty(const Tensor& loss, const Tensor& input, int64_t n, double lambda) {
  GS_CHECK(input.requires_grad(), "--grad-penalty: the input must require grad");
  // The gradient of the summed loss w.r.t. each image, as a graph (create_graph), so the
  // objective's backward differentiates its squared norm too.
  Tensor dx = grad(mul(loss, double(n)), {input}, Tensor(), false, /*create_graph=*/true)[0];
  Tensor penalty = mul(sum(mul(dx, dx)), lambda / double(n));
  return {add(loss, penalty), penalty};
}

Device run_device(const TrainConfig& c) {
  Device device = Device::parse(c.device);
  if (device.is_cpu()) return device;
  GS_CHECK(cuda::is_available(), "--device %s: no CUDA device (%s); use --device cpu", c.device.c_str(),
           cuda::unavailable_reason().c_str());
  // Data-parallel with a plain "cuda": one GPU per process of the machine, as torchrun's LOCAL_RANK.
  const LaunchEnv env = launch_env();
  if (env.world_size > 1 && c.device == "cuda") return Device::cuda(env.local_rank % cuda::device_count());
  return device;
}

EvalResult evaluate_data_parallel(nn::Module& model, io::DataLoader& loader, ProcessGroup& world) {
  if (world.size() == 1) return evaluate(model, loader);
  world.broadcast(named_tensors(model.named_buffers()));  // rank 0's statistics, as DDP's forward
  EvalResult local = evaluate(model, loader);
  std::vector<double> sums{local.count ? local.loss * double(local.count) : 0.0,
                           local.count ? std::round(local.accuracy * double(local.count)) : 0.0, double(local.count)};
  world.all_reduce_sum(sums);
  EvalResult r;
  r.count = int64_t(sums[2]);
  r.loss = r.count ? sums[0] / sums[2] : NAN;
  r.accuracy = r.count ? sums[1] / sums[2] : NAN;
  return r;
}

EvalResult evaluate(nn::Module& model, io::DataLoader& loader) {
  const Device device = model.device();
  bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  loader.start_epoch(0);
  io::Batch batch;
  while (loader.next(batch)) {
    Tensor logits = model(batch.images.to(device));
    Tensor loss = cross_entropy(logits, batch.labels.to(device), {.reduction = Reduction::Sum});
    loss_sum += loss.item();
    auto pred = argmax(logits, 1).to_vector<int64_t>();
    auto labels = batch.labels.to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == labels[i];
    r.count += static_cast<int64_t>(labels.size());
  }
  model.train(was_training);
  r.loss = r.count ? loss_sum / r.count : NAN;
  r.accuracy = r.count ? double(correct) / r.count : NAN;
  return r;
}

double epoch_metric(const std::string& metric, double train_loss, double train_acc, const EvalResult& val) {
  if (metric == "val_loss") return val.loss;
  if (metric == "val_acc") return val.accuracy;
  if (metric == "train_loss") return train_loss;
  GS_CHECK(metric == "train_acc", "epoch_metric: unknown metric '%s'", metric.c_str());
  return train_acc;
}

CrossEntropyOptions training_loss(const TrainConfig& config, const io::Dataset& train, Device device) {
  CrossEntropyOptions options;
  options.label_smoothing = config.label_smoothing;
  const std::string& spec = config.class_weights;
  if (spec.empty() || spec == "none") return options;
  const int64_t C = train.num_classes;
  std::vector<float> weights;
  if (spec == "balanced") {
    // n / (C n_c): every class then weighs as much in the loss as in a balanced set (scikit-learn's rule).
    const std::vector<int64_t> counts = train.class_counts();
    for (int64_t k = 0; k < C; ++k) {
      const std::string name = k < int64_t(train.class_names.size()) ? " (" + train.class_names[k] + ")" : "";
      GS_CHECK(counts[k] > 0, "--class-weights balanced: class %lld%s has no training images", (long long)k,
               name.c_str());
      weights.push_back(float(double(train.size()) / (double(C) * double(counts[k]))));
    }
  } else {
    std::stringstream ss(spec);
    for (std::string item; std::getline(ss, item, ',');) {
      std::optional<double> w = parse_double(item);
      GS_CHECK(w && std::isfinite(*w) && *w >= 0,
               "--class-weights: '%s' is not a weight >= 0 (give none, balanced, or %lld comma-separated weights)",
               item.c_str(), (long long)C);
      weights.push_back(float(*w));
    }
    GS_CHECK(int64_t(weights.size()) == C, "--class-weights: %zu weights for %lld classes in '%s'", weights.size(),
             (long long)C, spec.c_str());
    bool any = false;
    for (float w : weights) any = any || w > 0;
    GS_CHECK(any, "--class-weights: every weight is 0 in '%s'", spec.c_str());
  }
  options.weight = from_vector<float>(weights, {C}).to(device);
  return options;
}

nn::ModulePtr build_model(const TrainConfig& config, int64_t in_channels, int64_t num_classes, int64_t image_size) {
  nn::ModulePtr model = !config.model_spec.empty() ? nn::load_model_spec(config.model_spec)
                                                   : nn::make_model(config.model, in_channels, num_classes, image_size);
  if (config.recompute_segments != 1) {
    const std::string name = config.model_spec.empty() ? config.model : config.model_spec;
    auto* layers = dynamic_cast<nn::Sequential*>(model.get());
    GS_CHECK(layers != nullptr, "--recompute-segments: the model %s is a %s, not a Sequential of layers to split",
             name.c_str(), model->type_name().c_str());
    GS_CHECK(config.recompute_segments >= 1 && config.recompute_segments <= (int64_t)layers->size(),
             "--recompute-segments: the model %s has %zu top-level layers, so 1 to %zu segments; got %lld",
             name.c_str(), layers->size(), layers->size(), (long long)config.recompute_segments);
    layers->set_recompute_segments(static_cast<int>(config.recompute_segments));
  }
  return model;
}

std::shared_ptr<io::Transform> default_normalization(const std::string& data_spec, const io::Dataset& train) {
  if (data_spec == "fashion-mnist") return std::make_shared<io::Normalize>(std::vector<double>{0.2860}, std::vector<double>{0.3530});
  // Anything else: per-channel statistics of the training images.
  int64_t C = train.images.shape()[1];
  Tensor per_channel = raw::reduce(raw::ReduceOp::Mean, train.images, {0, 2, 3}, false);
  Tensor sq = raw::reduce(raw::ReduceOp::Mean, raw::binary(raw::BinaryOp::Mul, train.images, train.images), {0, 2, 3}, false);
  std::vector<double> mean = per_channel.to_vector<double>(), m2 = sq.to_vector<double>(), std(C);
  for (int64_t c = 0; c < C; ++c) std[c] = std::sqrt(std::max(1e-12, m2[c] - mean[c] * mean[c]));
  return std::make_shared<io::Normalize>(mean, std);
}

io::DataLoaderOptions training_loader_options(const TrainConfig& c, const io::Dataset& train) {
  GS_CHECK(c.sampler == "shuffle" || c.sampler == "balanced" || c.sampler == "sequential",
           "--sampler must be shuffle, balanced or sequential, got '%s'", c.sampler.c_str());
  return {.batch_size = c.batch_size,
          .shuffle = c.sampler != "sequential",
          .drop_last = false,
          .seed = c.seed,
          .sample_weights = c.sampler == "balanced" ? io::balanced_sample_weights(train) : std::vector<double>{}};
}

Trainer::Trainer(TrainConfig config) : config_(std::move(config)) {}

namespace {
std::shared_ptr<io::Transform> compose(std::shared_ptr<io::Transform> augment, std::shared_ptr<io::Transform> norm) {
  if (!augment) return norm;
  return std::make_shared<io::Compose>(std::vector<std::shared_ptr<io::Transform>>{augment, norm});
}
std::string json_number(double v) { return std::isfinite(v) ? json(v).dump() : "null"; }
}  // namespace

void check_model_fits(nn::Module& model, const TrainConfig& c, const Shape& image_shape, int64_t num_classes,
                      const Device& device) {
  // One image through the model in eval mode, before anything is written: a model that does not
  // take the data's images (a zoo model built for square ones, a spec) or gives another number of
  // classes fails here, named, not after an epoch. Eval mode and no grad: nothing changes.
  const std::string name = c.model_spec.empty() ? c.model : c.model_spec;
  const Shape one = {1, image_shape[1], image_shape[2], image_shape[3]};
  const bool was_training = model.is_training();
  model.eval();
  Tensor out;
  try {
    NoGradGuard no_grad;
    out = model.forward(zeros(one, {DType::F32, device}));
  } catch (const Error& e) {
    model.train(was_training);
    GS_CHECK(false, "model %s does not take the data's images %s: %s", name.c_str(), shape_str(one).c_str(), e.what());
  }
  model.train(was_training);
  GS_CHECK(out.dim() == 2 && out.shape()[1] == num_classes,
           "model %s gives outputs %s for one image; the data %s has %lld classes", name.c_str(),
           shape_str(out.shape()).c_str(), c.data.c_str(), (long long)num_classes);
}

TrainResult Trainer::run(int64_t stop_after_epoch) {
  const TrainConfig& c = config_;
  c.check_values("train");
  GS_CHECK(c.epochs > 0, "train: --epochs must be positive, got %lld", (long long)c.epochs);
  GS_CHECK(c.val_fraction >= 0 && c.val_fraction < 1, "train: --val-fraction must be in [0, 1), got %g", c.val_fraction);
  GS_CHECK(c.patience >= 0, "train: --patience must be >= 0, got %lld", (long long)c.patience);
  GS_CHECK(c.mixup >= 0 && c.cutmix >= 0, "train: --mixup and --cutmix must be >= 0 (got %g, %g)", c.mixup, c.cutmix);
  const io::MixOptions mix{.mixup_alpha = c.mixup, .cutmix_alpha = c.cutmix};
  GS_CHECK(c.ema >= 0 && c.ema < 1, "train: --ema must be in [0, 1) (a decay such as 0.999; 0: off), got %g", c.ema);
  GS_CHECK(c.accumulate >= 1, "train: --accumulate must be >= 1, got %lld", (long long)c.accumulate);
  GS_CHECK(c.grad_penalty >= 0 && std::isfinite(c.grad_penalty),
           "train: --grad-penalty must be a finite number >= 0, got %g", c.grad_penalty);
  GS_CHECK(c.accumulate == 1 || c.probe_every == 0,
           "train: --probe-every samples one forward and backward per optimizer step; it does not take --accumulate "
           "%lld (--detect-anomaly does)",
           (long long)c.accumulate);
  GS_CHECK(c.patience == 0 || c.val_fraction > 0,
           "train: --patience stops on the validation accuracy: it needs a validation set (--val-fraction)");
  // Data-parallel (mpirun -np N): every rank runs all of this; rank 0 alone writes the run directory.
  ProcessGroup& world = ProcessGroup::world();
  const bool main_rank = world.is_main();
  auto wall_start = std::chrono::steady_clock::now();
  int threads = apply_runtime_settings(c.threads, c.kernels);
  manual_seed(c.seed);
  set_rng_stream(static_cast<uint64_t>(world.rank()));  // each rank its own dropout masks (tensor/random.h)

  // ---- data ----
  io::Dataset train_full = load_training_set(c);  // minus --exclude-list
  io::Dataset test = io::load_dataset(c.data, false);
  io::Dataset train = train_full, val;
  if (c.val_fraction > 0) std::tie(train, val) = io::split_validation(train_full, c.val_fraction, c.seed);
  if (c.limit_train > 0 && c.limit_train < train.size()) train = io::stratified_subset(train, c.limit_train, c.seed);
  if (c.limit_test > 0 && c.limit_test < test.size()) test = io::stratified_subset(test, c.limit_test, c.seed);
  const Device device = run_device(c);
  const CrossEntropyOptions criterion = training_loss(c, train, device);  // checks --class-weights
  auto norm = default_normalization(c.data, train_full);
  auto augment = io::make_augmentation(c.augment);
  io::DataLoaderOptions train_options = training_loader_options(c, train);
  train_options.num_shards = world.size();
  train_options.shard_index = world.rank();
  io::DataLoader train_loader(train, train_options, compose(augment, norm));
  io::DataLoaderOptions eval_opt{.batch_size = 256,
                                 .shuffle = false,
                                 .drop_last = false,
                                 .seed = c.seed,
                                 .num_shards = world.size(),
                                 .shard_index = world.rank(),
                                 .pad_shards = false};
  io::DataLoader test_loader(test, eval_opt, norm);
  std::unique_ptr<io::DataLoader> val_loader;
  if (val.size() > 0) val_loader = std::make_unique<io::DataLoader>(val, eval_opt, norm);

  // ---- model, optimizer, schedule ----
  const Shape& image_shape = train.images.shape();
  nn::ModulePtr model = build_model(c, image_shape[1], train_full.num_classes, image_shape[2]);
  if (!c.weights.empty()) load_weights(c.weights, *model);
  const std::string model_repr = model->repr();  // as build_model made it: checkpoints record it
  model->to(device);
  check_model_fits(*model, c, image_shape, train_full.num_classes, device);
  apply_sync_bn(c, *model);
  auto optimizer = optim::make_optimizer(c.optimizer, model->parameters(), c.optimizer_hyper());
  json run_extra = json::object();  // run.json additions
  if (criterion.weight.defined()) run_extra["class_weights"] = criterion.weight.to(Device::cpu()).to_vector<double>();
  if (c.lr_auto && c.resume.empty()) {
    // --lr auto: the LR range test on this model and loader (it restores weights, optimizer and RNG, so
    // the run that follows is the one `--lr <suggestion>` would give); config.json records both.
    // Data-parallel: each rank sweeps on its shard with the gradients and losses averaged, as one
    // process at the whole step's batch would; rank 0's suggestion is then taken by all.
    LRFinderOptions find_options;
    if (world.size() > 1) {
      find_options.after_backward = [&](double loss) {
        std::vector<Tensor> grads;
        for (const Tensor& p : model->parameters()) grads.push_back(p.grad());
        world.all_reduce_mean(grads);
        std::vector<double> sum{loss};
        world.all_reduce_sum(sum);
        return sum[0] / world.size();
      };
    }
    LRFinderResult found = lr_find_on_loader(*model, *optimizer, train_loader, c, find_options);
    found.suggested_lr = world.broadcast_value(found.suggested_lr);
    GS_CHECK(found.suggested_lr > 0, "train: --lr auto: the LR range test found no suggestion (%zu points)",
             found.points.size());
    if (main_rank) {
      write_lr_find_outputs(c.out + "/lr_find", found);
      std::fprintf(stderr, "lr-find: valley %.3g, steepest %.3g, minimum/10 %.3g -> lr %.3g\n",
                   found.suggestions.valley, found.suggestions.steepest, found.suggestions.minimum, found.suggested_lr);
    }
    config_.lr = found.suggested_lr;
    optimizer->set_lr(c.lr);
    run_extra["lr_find"] = {{"valley", found.suggestions.valley},
                            {"steepest", found.suggestions.steepest},
                            {"minimum", found.suggestions.minimum},
                            {"method", found.method},
                            {"suggested_lr", found.suggested_lr},
                            {"steps", found.points.size()}};
  }
  // --accumulate N: N batches (fewer in the epoch's last group) make one optimizer step.
  const int64_t batches_per_epoch = train_loader.batches_per_epoch();
  const int64_t steps_per_epoch = (batches_per_epoch + c.accumulate - 1) / c.accumulate;
  auto scheduler = optim::make_scheduler(c.schedule, *optimizer, steps_per_epoch, c.epochs);
  const std::string schedule_metric = scheduler->metric();  // plateau: what it follows, fed each epoch
  GS_CHECK(schedule_metric.rfind("val_", 0) != 0 || val_loader,
           "train: --schedule %s follows %s: it needs a validation set (--val-fraction), or metric=train_loss",
           c.schedule.c_str(), schedule_metric.c_str());

  // The run's config as config.json and the checkpoints keep it: without --resume, so that
  // `train --config config.json` repeats the run rather than continuing this one's checkpoint.
  TrainConfig saved_config = c;
  saved_config.resume.clear();
  const std::string config_json = saved_config.to_json();
  if (world.size() > 1) run_extra["processes"] = world.size();

  // --ema: a second model holds the average; it is what is evaluated, checkpointed as "model."
  // and exported, while the optimizer steps `model`.
  nn::ModulePtr ema_model;
  std::unique_ptr<optim::WeightEma> ema;
  if (c.ema > 0) {
    ema_model = build_model(c, image_shape[1], train_full.num_classes, image_shape[2]);
    ema_model->to(device);
    ema = std::make_unique<optim::WeightEma>(ema_model->state_dict(), c.ema);
    ema->copy_from(model->state_dict());
  }
  nn::Module& evaluated = ema_model ? *ema_model : *model;

  int64_t start_epoch = 0, best_epoch = 0;
  double best_metric = -1;
  std::vector<std::string> metric_lines, timing_lines;
  if (!c.resume.empty()) {
    CheckpointInfo info = load_checkpoint(c.resume, *model, optimizer.get(), scheduler.get(), ema_model.get());
    // Weights that fit do not make the same model: a spec edited since (ReLU for Tanh, another
    // dropout p) would go on as the same run with another network.
    const std::string difference = info.model_repr.empty() ? "" : model_difference(info.model_repr, model_repr);
    GS_CHECK(difference.empty(),
             "train --resume: checkpoint %s was written for another model than %s builds now (%s); to train "
             "this model from those weights, start a new run with --weights %s",
             c.resume.c_str(), (c.model_spec.empty() ? c.model : c.model_spec).c_str(), difference.c_str(),
             c.resume.c_str());
    start_epoch = info.epoch;
    best_metric = info.best_metric;
    best_epoch = info.best_epoch;
    GS_CHECK(start_epoch < c.epochs, "train: checkpoint %s already has %lld epochs (--epochs %lld)", c.resume.c_str(),
             (long long)start_epoch, (long long)c.epochs);
    // Keep the log lines of the epochs the checkpoint covers, so the logs read as one run. A line
    // cut short by a crash ends what is kept.
    for (auto [path, lines] :
         {std::pair{c.out + "/metrics.jsonl", &metric_lines}, std::pair{c.out + "/timing.jsonl", &timing_lines}}) {
      std::ifstream old(path);
      for (std::string line; std::getline(old, line);) {
        if (line.empty()) continue;
        json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (record.is_discarded() || !record.is_object()) break;
        const json& epoch = record.contains("epoch") ? record["epoch"] : json();
        if (epoch.is_number_integer() && epoch.get<int64_t>() <= start_epoch) lines->push_back(line);
      }
    }
    // Probe records of steps after the checkpoint (an epoch that ran but did not finish) would be
    // logged again: keep only the steps the checkpoint covers.
    const std::string probes_path = c.out + "/probes.jsonl";
    if (main_rank && fs::exists(probes_path)) {
      std::ifstream in(probes_path);
      std::string kept;
      for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (record.is_discarded()) break;  // a line cut short by the crash: nothing after it counts
        if (record.value("step", int64_t(0)) < start_epoch * steps_per_epoch) kept += line + "\n";
      }
      io::write_file_atomic(probes_path, kept);
    }
    // The same for the event files: step tags past the checkpoint's step, and the epoch curves and
    // prediction images (logged at step = epoch) past its epoch. (The new file's SessionLog START
    // also tells a TensorBoard that already read them.)
    if (main_rank && c.tensorboard) {
      const int64_t first_step = start_epoch * steps_per_epoch;
      io::filter_event_files(c.out, [&](const std::string& tag, int64_t step) {
        const bool per_epoch = tag.rfind("epoch/", 0) == 0 || tag == "predictions";
        return per_epoch ? step <= start_epoch : step < first_step;
      });
    }
  }
  // Written once the checkpoint has loaded: a --resume that fails leaves the run's files as they were.
  if (main_rank) {
    fs::create_directories(c.out);
    // A fresh run into a used directory: an earlier run's checkpoints and summary would pass for
    // this run's (best.safetensors of another model, kept where this run keeps none), and its event
    // files would draw its curves under this run's in TensorBoard, step for step.
    if (c.resume.empty()) {
      for (const char* name : {"best.safetensors", "last.safetensors", "summary.json"}) fs::remove(c.out + "/" + name);
      for (const auto& entry : fs::directory_iterator(c.out))
        if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) fs::remove(entry.path());
    }
    io::write_file_atomic(c.out + "/config.json", config_json + "\n");
    io::write_file_atomic(c.out + "/run.json", run_info_json(c, threads, run_extra).dump(2) + "\n");
  }

  // Every rank starts from rank 0's weights and buffers, as DDP's constructor makes sure.
  world.broadcast(named_tensors(model->state_dict()));
  if (ema_model) world.broadcast(named_tensors(ema_model->state_dict()));

  if (main_rank) {
    const std::string processes = world.size() > 1 ? format(" x %d processes (data-parallel: %lld images per step%s)",
                                                            world.size(), (long long)(c.batch_size * world.size()),
                                                            c.sync_bn ? ", synchronised batch norm" : "")
                                                   : "";
    std::fprintf(stderr,
                 "gradscope train: %s on %s (%lld train / %lld val / %lld test images), %lld params, %s lr %g, "
                 "batch %lld, %d threads%s -> %s\n",
                 c.model_spec.empty() ? c.model.c_str() : c.model_spec.c_str(), c.data.c_str(), (long long)train.size(),
                 (long long)val.size(), (long long)test.size(), (long long)model->num_parameters(), c.optimizer.c_str(),
                 c.lr, (long long)c.batch_size, threads, processes.c_str(), c.out.c_str());
  }
  if (test.test_is_train && main_rank) {
    std::fprintf(stderr,
                 "warning: %s has no test set of its own, so the test scores are measured on the training "
                 "images (a folder with train/ and test/ sub-folders, or idx:<dir> with t10k-* files, has one)\n",
                 c.data.c_str());
  }
  if (!val_loader && main_rank) {
    std::fprintf(stderr,
                 "no validation set: best.safetensors is not kept (it would be chosen on the test set); "
                 "--val-fraction 0.1 holds one out\n");
  }
  if (main_rank) {
    // The class count is the largest training label + 1: one corrupt label (200 among 0..9) makes a
    // 201-class model without an error. Classes with no training image say so.
    std::vector<int64_t> per_class(static_cast<size_t>(train_full.num_classes), 0);
    for (int64_t label : train_full.labels.to_vector<int64_t>())
      if (label >= 0 && label < train_full.num_classes) ++per_class[static_cast<size_t>(label)];
    std::string empty;
    int64_t n_empty = 0;
    for (size_t k = 0; k < per_class.size(); ++k) {
      if (per_class[k] != 0) continue;
      if (++n_empty <= 5) empty += (empty.empty() ? "" : ", ") + std::to_string(k);
    }
    if (n_empty > 0) {
      std::fprintf(stderr, "warning: %lld of the %lld classes have no training image (%s%s): a corrupt label in %s?\n",
                   (long long)n_empty, (long long)train_full.num_classes, empty.c_str(), n_empty > 5 ? ", ..." : "",
                   c.data.c_str());
    }
  }
  if (criterion.weight.defined() && main_rank) {
    std::string list;
    for (double w : criterion.weight.to(Device::cpu()).to_vector<double>())
      list += (list.empty() ? "" : ", ") + format("%.4g", w);
    std::fprintf(stderr, "class weights (--class-weights %s): %s\n", c.class_weights.c_str(), list.c_str());
  }

  // ---- probes (inspect/probes.h): --probe-every, --probe, --detect-anomaly, --tensorboard ----
  // Data-parallel: rank 0 probes (its gradients after the averaging are everyone's); every rank
  // checks its own numbers for --detect-anomaly.
  inspect::ProbeOptions probe_options;
  probe_options.every = main_rank ? c.probe_every : 0;
  probe_options.patterns = inspect::split_patterns(c.probe);
  probe_options.detect_anomaly = c.detect_anomaly;
  probe_options.tensorboard_dir = c.tensorboard && main_rank ? c.out : "";
  probe_options.jsonl_path = main_rank ? c.out + "/probes.jsonl" : "";
  probe_options.append = !c.resume.empty();
  if (!c.resume.empty())
    probe_options.resume_step = start_epoch * steps_per_epoch, probe_options.resume_epoch = start_epoch;
  inspect::Inspector probes(model, probe_options);
  io::Batch prediction_sample;  // a fixed test batch, drawn with its predictions at each epoch end
  if (probes.tensorboard()) {
    test_loader.start_epoch(0);
    test_loader.next(prediction_sample);
  }

  const std::vector<Tensor> parameters = model->parameters();
  const std::vector<Tensor> model_buffers = named_tensors(model->named_buffers());
  TrainResult result;
  int64_t eval_every = std::max<int64_t>(1, c.epochs / 20);
  double total_images = 0, total_train_seconds = 0;
  EvalResult test_result{NAN, NAN, 0};
  for (int64_t epoch = start_epoch + 1; epoch <= c.epochs; ++epoch) {
    model->train();
    train_loader.start_epoch(epoch);
    ProgressBar bar(format("epoch %lld/%lld", (long long)epoch, (long long)c.epochs), batches_per_epoch,
                    c.progress && main_rank);
    auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0, penalty_sum = 0;
    int64_t seen = 0, correct = 0, step = 0, batch_index = 0;
    io::Batch batch;
    while (train_loader.next(batch)) {
      // This batch's place in its accumulation group; the group's images weigh each batch's mean
      // loss, so a group's gradient is that of its images' mean loss (a short last batch included).
      const int64_t first_in_group = batch_index - batch_index % c.accumulate;
      const int64_t group_batches = std::min(c.accumulate, batches_per_epoch - first_in_group);
      const bool group_start = batch_index == first_in_group;
      const bool group_end = batch_index == first_in_group + group_batches - 1;
      const int64_t n = batch.labels.numel();
      const int64_t last_batch = train_loader.samples_per_epoch() - (batches_per_epoch - 1) * c.batch_size;
      const int64_t group_images = (group_batches - 1) * c.batch_size +
                                   (first_in_group + group_batches == batches_per_epoch ? last_batch : c.batch_size);
      const int64_t global_step = (epoch - 1) * steps_per_epoch + step;
      if (group_start) probes.begin_step(global_step);
      // --mixup / --cutmix: the batch mixed with itself rolled by one; the loss takes the mixed
      // labels as probabilities, the running accuracy the label that weighs more.
      Tensor images = batch.images, targets = batch.labels;
      std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
      if (mix.enabled()) {
        Generator mix_gen(io::mix_seed(c.seed, epoch, batch_index));
        io::MixedBatch mixed = io::mix_batch(batch.images, batch.labels, train_full.num_classes, mix, mix_gen);
        images = mixed.images, targets = mixed.targets;
        if (mixed.lambda < 0.5) std::rotate(labels.rbegin(), labels.rbegin() + 1, labels.rend());  // label n - 1
      }
      world.broadcast(model_buffers);  // rank 0's running statistics, as DDP's forward does
      Tensor input = images.to(device);
      if (c.grad_penalty > 0) input = input.detach().set_requires_grad(true);
      Tensor logits = (*model)(input);
      Tensor loss = cross_entropy(logits, targets.to(device), criterion);
      probes.after_forward(loss);
      Tensor objective = loss;
      if (c.grad_penalty > 0) {
        PenalisedLoss p = add_grad_penalty(loss, input, n, c.grad_penalty);
        objective = p.objective;
        penalty_sum += p.penalty.item() * double(n - batch.padding);
      }
      if (global_step == 0 && group_start)
        probes.log_images("first_batch", images, 0, labels);  // as the network sees it
      if (group_start) optimizer->zero_grad();
      backward(c.accumulate == 1 ? objective : objective * (double(n) / double(group_images)));
      if (group_end) {
        if (world.size() > 1) {
          std::vector<Tensor> grads;
          for (const Tensor& p : parameters) grads.push_back(p.grad());
          world.all_reduce_mean(grads);  // the mean over the processes' equal shares of the step's images
        }
        probes.after_backward();
        if (c.clip_value > 0) optim::clip_grad_value(model->parameters(), c.clip_value);
        if (c.clip_norm > 0) optim::clip_grad_norm(model->parameters(), c.clip_norm);
        probes.after_clip(c.clip_value > 0 || c.clip_norm > 0);
        optimizer->step();
        if (ema) ema->update(model->state_dict());
        probes.after_step(optimizer->lr());
        if (scheduler) scheduler->step();
        ++step;
      }
      double l = loss.item();
      GS_CHECK(std::isfinite(l), "train: loss became %g at epoch %lld batch %lld; lower --lr or add --clip-norm%s", l,
               (long long)epoch, (long long)batch_index,
               c.detect_anomaly ? "" : " (--detect-anomaly names the first op and module that made a NaN/Inf)");
      // Data-parallel padding (the shard's last images repeat the epoch's start) trains, as in
      // torch's DistributedSampler, but the epoch's loss and accuracy count each image once.
      const int64_t counted = n - batch.padding;
      if (batch.padding > 0 && counted > 0) {
        NoGradGuard no_grad;
        l = cross_entropy(raw::narrow(logits, 0, 0, counted), raw::narrow(targets.to(device), 0, 0, counted), criterion)
                .item();
      }
      if (counted > 0) loss_sum += l * counted;
      seen += counted;
      auto pred = argmax(logits, 1).to_vector<int64_t>();
      for (int64_t i = 0; i < counted; ++i) correct += pred[size_t(i)] == labels[size_t(i)];
      ++batch_index;
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double shown = double(std::max<int64_t>(seen, 1));
      bar.update(batch_index, loss_sum / shown, double(correct) / shown, seen / std::max(secs, 1e-9));
    }
    if (world.size() > 1) {
      std::vector<double> sums{loss_sum, double(seen), double(correct), penalty_sum};
      world.all_reduce_sum(sums);
      loss_sum = sums[0], seen = int64_t(sums[1]), correct = int64_t(sums[2]), penalty_sum = sums[3];
    }
    double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total_images += seen;
    total_train_seconds += epoch_seconds;
    double train_loss = loss_sum / std::max<int64_t>(seen, 1), train_acc = double(correct) / std::max<int64_t>(seen, 1);
    EvalResult val_result{NAN, NAN, 0};
    bool do_eval = epoch % eval_every == 0 || epoch == c.epochs;
    if (do_eval && val_loader) val_result = evaluate_data_parallel(evaluated, *val_loader, world);
    if (do_eval) test_result = evaluate_data_parallel(evaluated, test_loader, world);
    if (!schedule_metric.empty() && (do_eval || schedule_metric.rfind("train_", 0) == 0)) {
      // a reduced lr applies from the next step on
      scheduler->observe(epoch_metric(schedule_metric, train_loss, train_acc, val_result));
    }
    double lr = optimizer->lr();
    if (main_rank)
      bar.finish(format(
          "train loss %.4f acc %.2f%% | %s test loss %s acc %s | %.1fs %.0f img/s", train_loss, 100 * train_acc,
          val_loader ? format("val loss %.4f acc %.2f%% |", val_result.loss, 100 * val_result.accuracy).c_str() : "",
          do_eval ? format("%.4f", test_result.loss).c_str() : "-",
          do_eval ? format("%.2f%%", 100 * test_result.accuracy).c_str() : "-", epoch_seconds, seen / epoch_seconds));

    std::string probe_table = probes.end_epoch(epoch);
    if (!probe_table.empty()) std::fputs(probe_table.c_str(), stderr);
    if (io::EventWriter* tb = probes.tensorboard()) {
      tb->add_scalar("epoch/train_loss", train_loss, epoch);
      tb->add_scalar("epoch/train_acc", train_acc, epoch);
      if (do_eval) tb->add_scalar("epoch/test_loss", test_result.loss, epoch);
      if (do_eval) tb->add_scalar("epoch/test_acc", test_result.accuracy, epoch);
      if (do_eval && val_loader) tb->add_scalar("epoch/val_loss", val_result.loss, epoch);
      if (do_eval && val_loader) tb->add_scalar("epoch/val_acc", val_result.accuracy, epoch);
      probes.log_predictions(evaluated, prediction_sample.images, prediction_sample.labels, epoch);
    }

    // ---- logs and checkpoints (each file written whole, atomically) ----
    std::ostringstream line;
    line << "{\"epoch\":" << epoch << ",\"step\":" << epoch * steps_per_epoch << ",\"lr\":" << json_number(lr)
         << ",\"train_loss\":" << json_number(train_loss) << ",\"train_acc\":" << json_number(train_acc);
    if (c.grad_penalty > 0)
      line << ",\"train_grad_penalty\":" << json_number(penalty_sum / double(std::max<int64_t>(seen, 1)));
    line << ",\"val_loss\":" << json_number(val_result.loss) << ",\"val_acc\":" << json_number(val_result.accuracy)
         << ",\"test_loss\":" << json_number(do_eval ? test_result.loss : NAN)
         << ",\"test_acc\":" << json_number(do_eval ? test_result.accuracy : NAN) << "}";
    metric_lines.push_back(line.str());
    timing_lines.push_back(format("{\"epoch\":%lld,\"seconds\":%.3f,\"images_per_s\":%.1f}", (long long)epoch,
                                  epoch_seconds, seen / epoch_seconds));
    std::string metrics_text, timing_text;
    for (auto& l : metric_lines) metrics_text += l + "\n";
    for (auto& l : timing_lines) timing_text += l + "\n";
    if (main_rank) io::write_file_atomic(c.out + "/metrics.jsonl", metrics_text);
    if (main_rank) io::write_file_atomic(c.out + "/timing.jsonl", timing_text);

    // best.safetensors is chosen on the validation set only: chosen on the test set, it would make
    // the test score that `eval` and `inspect errors` report on it optimistic.
    const bool improved = do_eval && val_loader && val_result.accuracy > best_metric;
    if (improved) best_metric = val_result.accuracy, best_epoch = epoch;
    if (main_rank) {
      CheckpointInfo info{epoch, best_metric, config_json, best_epoch, model_repr};
      if (improved)
        save_checkpoint(c.out + "/best.safetensors", evaluated, optimizer.get(), scheduler.get(), info,
                        ema_model ? model.get() : nullptr);
      save_checkpoint(c.out + "/last.safetensors", evaluated, optimizer.get(), scheduler.get(), info,
                      ema_model ? model.get() : nullptr);
    }
    result.final_train_loss = train_loss;
    result.epochs = epoch;
    if (stop_after_epoch > 0 && epoch >= stop_after_epoch) break;
    if (c.patience > 0 && do_eval && epoch - best_epoch >= c.patience && epoch < c.epochs) {
      result.stopped_early = true;
      if (main_rank)
        std::fprintf(stderr,
                     "early stop after epoch %lld: no better validation accuracy for %lld epochs (best %.2f%% at "
                     "epoch %lld, in best.safetensors)\n",
                     (long long)epoch, (long long)(epoch - best_epoch), 100 * best_metric, (long long)best_epoch);
      break;
    }
  }

  result.test_loss = test_result.loss;
  result.test_accuracy = test_result.accuracy;
  result.best_metric = best_metric;
  result.train_images_per_s = total_train_seconds > 0 ? total_images / total_train_seconds : 0;
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  json summary{{"model", c.model_spec.empty() ? c.model : c.model_spec},
               {"data", c.data},
               {"epochs", result.epochs},
               {"final_train_loss", result.final_train_loss},
               {"test_loss", result.test_loss},
               {"test_accuracy", result.test_accuracy},
               {"test_is_train", test.test_is_train},
               {"best_val_accuracy", best_metric >= 0 ? json(best_metric) : json(nullptr)},
               {"best_epoch", best_epoch > 0 ? json(best_epoch) : json(nullptr)},
               {"stopped_early", result.stopped_early},
               {"train_images_per_s", result.train_images_per_s},
               {"wall_seconds", result.wall_seconds},
               {"threads", threads}};
  if (world.size() > 1) summary["processes"] = world.size();
  if (!main_rank) return result;
  io::write_file_atomic(c.out + "/summary.json", summary.dump(2) + "\n");
  std::fprintf(stderr, "done: test accuracy %.2f%%, test loss %.4f, %.0f train img/s, %s wall; run directory %s\n",
               100 * result.test_accuracy, result.test_loss, result.train_images_per_s,
               format_duration(result.wall_seconds).c_str(), c.out.c_str());
  return result;
}

}  // namespace gs::train

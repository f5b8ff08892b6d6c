// train, eval, models, kernels.
#include "cli/commands.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "io/dataloader.h"
#include "io/dataset.h"
#include "io/safetensors.h"
#include "kernels/cpu/all_tables.h"
#include "kernels/registry.h"
#include "layers/zoo.h"
#include "tensor/parse.h"
#include "train/checkpoint.h"
#include "train/predict.h"
#include "train/trainer.h"

namespace gs::cli {

namespace {
std::map<CLI::App*, std::function<void()>>& actions() {
  static std::map<CLI::App*, std::function<void()>> a;
  return a;
}
}  // namespace

void register_action(CLI::App* cmd, std::function<void()> action) { actions()[cmd] = std::move(action); }

// Flags shared by every command that builds a model and its data.
void add_model_data_flags(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--model", c.model, "model from the zoo: mlp, lenet5, fashionnet, resnet8")->capture_default_str();
  cmd->add_option("--model-spec", c.model_spec, "JSON model spec file (one layer per entry); overrides --model");
  cmd->add_option("--data", c.data,
                  "data set: fashion-mnist | mnist:<dir> | idx:<dir> | idx:<images>,<labels> | cifar10:<dir> | "
                  "folder:<dir>[:HxW[xC]] (train/ and test/ sub-folders, or one folder used for both)")
      ->capture_default_str();
  cmd->add_option("--threads", c.threads, "CPU threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  cmd->add_option("--kernel", c.kernels, "kernel variants, e.g. matmul=ref,conv2d=im2col (as GS_KERNELS)");
  cmd->add_option("--device", c.device, "cpu, cuda or cuda:N (a CUDA build with a GPU; see `gradscope cuda`)")
      ->capture_default_str();
}

void add_optimizer_data_flags(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--batch", c.batch_size, "batch size")->capture_default_str();
  cmd->add_option("--optimizer", c.optimizer, "sgd | adam | adamw | rprop | rmsprop")->capture_default_str();
  cmd->add_option("--momentum", c.momentum, "momentum (sgd, rmsprop; cycled by --schedule onecycle|cyclic)")
      ->capture_default_str();
  cmd->add_option("--weight-decay", c.weight_decay, "weight decay (decoupled for adamw)")->capture_default_str();
  cmd->add_flag("--nesterov", c.nesterov, "Nesterov momentum (sgd)");
  cmd->add_option("--beta1", c.beta1, "Adam beta1 (cycled by --schedule onecycle|cyclic)")->capture_default_str();
  cmd->add_option("--beta2", c.beta2, "Adam beta2")->capture_default_str();
  cmd->add_option("--clip-norm", c.clip_norm, "clip the global gradient norm to this (0: off)")->capture_default_str();
  cmd->add_option("--clip-value", c.clip_value, "clip each gradient element to ±this (0: off)")->capture_default_str();
  cmd->add_option("--label-smoothing", c.label_smoothing, "cross-entropy label smoothing")->capture_default_str();
  cmd->add_option("--class-weights", c.class_weights,
                  "cross-entropy class weights: none | balanced (n / (classes * n_c) over the training images) | "
                  "w0,w1,... (one per class)")
      ->capture_default_str();
  cmd->add_option("--augment", c.augment, "augmentation: none | comma list of crop:P, flip, rotate:DEG, jitter:S")
      ->capture_default_str();
  cmd->add_option("--seed", c.seed, "seed for init, shuffling, augmentation and dropout")
      ->capture_default_str()
      ->check([](const std::string& v) {  // CLI11 reads -1 into an unsigned as 2^64 - 1
        return v.starts_with("-") ? std::string("must be >= 0, got ") + v : std::string();
      });
  cmd->add_option("--limit-train", c.limit_train, "train on a stratified subset of N images (0: all)")
      ->capture_default_str();
  cmd->add_option("--val-fraction", c.val_fraction, "fraction of the training set held out for validation")
      ->capture_default_str();
  cmd->add_option("--exclude-list", c.exclude_list,
                  "leave out these training images: a file of indices in file order, one per line or a CSV with the "
                  "index first (e.g. the outliers.csv of `gradscope inspect outliers`)");
  cmd->add_option("--weights", c.weights, "initial weights: a state_dict or checkpoint .safetensors");
}

train::TrainConfig resolve_config(CLI::App* cmd, const train::TrainConfig& given_config,
                                  const std::string& config_file) {
  if (config_file.empty()) return given_config;
  return resolve_config_json(cmd, given_config, train::TrainConfig::from_file(config_file).to_json(), config_file);
}

train::TrainConfig resolve_config_json(CLI::App* cmd, const train::TrainConfig& given_config,
                                       const std::string& base_json, const std::string& source) {
  // Start from the base config, then apply only the flags given on this command line.
  train::TrainConfig from_file = train::TrainConfig::from_json(base_json, source);
  nlohmann::json given = nlohmann::json::parse(given_config.to_json()),
                 base = nlohmann::json::parse(from_file.to_json());
  for (auto* opt : cmd->get_options()) {
    if (opt->count() == 0) continue;
    // "--limit-train" -> "limit_train"; three flags are named differently from their keys.
    std::string key = opt->get_name();
    while (!key.empty() && key[0] == '-') key.erase(0, 1);
    for (auto& ch : key) ch = ch == '-' ? '_' : ch;
    if (key == "batch") key = "batch_size";
    if (key == "kernel") key = "kernels";
    if (key == "no_progress") key = "progress";
    if (given.contains(key)) base[key] = given[key];
    if (key == "lr" && given.contains("lr_auto")) base["lr_auto"] = given["lr_auto"];  // --lr auto|<value>
  }
  return train::TrainConfig::from_json(base.dump(), source);
}

void add_sync_bn_flag(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_flag("--sync-bn,!--no-sync-bn", c.sync_bn,
                "under mpirun: batch norms normalise with the statistics of every process's batch, as "
                "torch.nn.SyncBatchNorm (without it each process uses its own, as DDP does; --no-sync-bn: off)");
}

void add_grad_penalty_flag(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--grad-penalty", c.grad_penalty,
                  "add this times the batch mean of |d loss / d image|^2 to the training objective (input-gradient "
                  "regularisation, 'double backpropagation': a create_graph backward, then a second one; 0: off)")
      ->capture_default_str();
}

void add_sampler_flag(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--sampler", c.sampler,
                  "training order: shuffle (each image once per epoch) | balanced (as many draws as images, with "
                  "replacement, every class equally likely: torch's WeightedRandomSampler) | sequential (file order, "
                  "as a DataLoader with shuffle=False)")
      ->capture_default_str();
}

void add_mix_flags(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--mixup", c.mixup,
                  "mixup: mix each training batch with itself rolled by one, lambda ~ Beta(ALPHA, ALPHA), the labels "
                  "as probabilities (0: off; 0.2 is common)")
      ->capture_default_str();
  cmd->add_option("--cutmix", c.cutmix,
                  "cutmix: paste a box of the previous image of the batch, its area ~ Beta(ALPHA, ALPHA) (0: off; 1.0 "
                  "is common); with --mixup each batch takes one of the two")
      ->capture_default_str();
}

void add_recompute_flag(CLI::App* cmd, train::TrainConfig& c) {
  cmd->add_option("--recompute-segments", c.recompute_segments,
                  "activation checkpointing, as torch's checkpoint_sequential: split the model's top-level layers "
                  "into N segments and keep only the inputs of all but the last; backward runs them again (less "
                  "memory between forward and backward, one more forward of them; the same numbers; 1: off)")
      ->capture_default_str();
}

void add_train(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto config_file = std::make_shared<std::string>();
  CLI::App* cmd =
      app.add_subcommand("train",
                         "train a model; writes config, metrics, summary and checkpoints to --out. Under "
                         "`mpirun -np N`: data-parallel, as torch's DDP (--batch per process, rank 0 writes)");
  train::TrainConfig& c = *config;
  add_model_data_flags(cmd, c);
  cmd->add_option("--config", *config_file, "repeat a run: its config.json (other flags given here override it)");
  cmd->add_option("--epochs", c.epochs, "epochs")->capture_default_str();
  add_optimizer_data_flags(cmd, c);
  auto lr_text = std::make_shared<std::string>();
  cmd->add_option("--lr", *lr_text,
                  "learning rate (peak lr for onecycle), or auto: run the LR range test first and use its suggestion")
      ->default_str(std::to_string(c.lr));
  cmd->add_option(
         "--schedule", c.schedule,
         "lr schedule, stepped per batch: none | step:step_size=N,gamma=G | multistep:milestones=A|B,gamma=G | "
         "exp:gamma=G | cosine | cosine_restarts:T_0=N | onecycle | cyclic:base_lr=A,max_lr=B,mode=triangular2 | "
         "plateau:metric=val_loss,factor=0.1,patience=10 (ReduceLROnPlateau, fed the metric each epoch); "
         "prefix warmup=N+ to ramp up first. onecycle and cyclic also cycle the momentum (Adam's beta1), as "
         "PyTorch's do; cycle_momentum=0 keeps --beta1 / --momentum")
      ->capture_default_str();
  add_sampler_flag(cmd, c);
  add_mix_flags(cmd, c);
  add_grad_penalty_flag(cmd, c);
  add_recompute_flag(cmd, c);
  cmd->add_option("--ema", c.ema,
                  "keep an exponential moving average of the weights with this decay (e.g. 0.999; 0: off): it is "
                  "what validation, test, the checkpoints' model weights (eval, export, inspect) and best use")
      ->capture_default_str();
  cmd->add_option("--accumulate", c.accumulate,
                  "sum the gradients of N batches into each optimizer step (an effective batch of N x --batch; "
                  "the schedule counts optimizer steps)")
      ->capture_default_str();
  cmd->add_option("--patience", c.patience,
                  "early stopping: stop after N epochs without a better validation accuracy (0: off; needs "
                  "--val-fraction; best.safetensors keeps the best epoch)")
      ->capture_default_str();
  cmd->add_option("--out", c.out, "run directory")->capture_default_str();
  cmd->add_option("--limit-test", c.limit_test, "evaluate on a stratified subset of N test images (0: all)")
      ->capture_default_str();
  cmd->add_option("--probe-every", c.probe_every,
                  "every N steps record per-layer activation, gradient and update statistics to probes.jsonl and "
                  "TensorBoard event files in --out, and check for NaN/Inf (0: off)")
      ->capture_default_str();
  cmd->add_option("--probe", c.probe,
                  "probe only modules / parameters matching these globs (repeatable or a comma list)");
  add_sync_bn_flag(cmd, c);
  cmd->add_flag(
      "--detect-anomaly", c.detect_anomaly,
      "check every op's output and every backward gradient for NaN/Inf; stop at the first, naming op and module");
  cmd->add_flag(
      "--tensorboard,!--no-tensorboard", c.tensorboard,
      "write TensorBoard events into --out: epoch losses and accuracies, the first batch, predictions on a fixed "
      "sample; with --probe-every also per-layer scalars and histograms (default on)");
  cmd->add_option("--resume", c.resume,
                  "continue from a checkpoint (e.g. runs/x/last.safetensors) in its folder (unless --out is given); "
                  "without --config the run's config.json beside it is the config (flags given here override it, "
                  "e.g. --epochs)");
  cmd->add_flag("!--no-progress", c.progress, "no progress bar");
  actions()[cmd] = [config, config_file, lr_text, cmd] {
    train::TrainConfig given = *config;
    if (!lr_text->empty()) {
      if (*lr_text == "auto") {
        given.lr_auto = true;
      } else {
        std::optional<double> lr = parse_double(*lr_text);
        GS_CHECK(lr.has_value(), "train: --lr must be a number or 'auto', got '%s'", lr_text->c_str());
        given.lr = *lr;
        given.lr_auto = false;
      }
    }
    std::string base_file = *config_file;
    if (base_file.empty() && !given.resume.empty()) {
      // A run continues with its own model, data and hyperparameters: the checkpoint holds the
      // weights and state, the config.json beside it what produced them.
      const std::filesystem::path beside = std::filesystem::path(given.resume).parent_path() / "config.json";
      if (std::filesystem::exists(beside)) {
        base_file = beside.string();
        std::fprintf(stderr, "resuming with %s (flags given here override it)\n", base_file.c_str());
      }
    }
    std::string embedded;  // a checkpoint copied away from its run: the config it keeps inside
    if (base_file.empty() && !given.resume.empty()) {
      io::SafetensorsFile file = io::load_safetensors(given.resume);
      auto format = file.metadata.find("format");
      auto config_text = file.metadata.find("config");
      if (format != file.metadata.end() && format->second == train::kCheckpointFormat &&
          config_text != file.metadata.end() && !config_text->second.empty()) {
        embedded = config_text->second;
        std::fprintf(stderr,
                     "resuming with the config kept in %s (no config.json beside it; flags given override it)\n",
                     given.resume.c_str());
      }
    }
    train::TrainConfig resolved = embedded.empty() ? resolve_config(cmd, given, base_file)
                                                   : resolve_config_json(cmd, given, embedded, given.resume);
    // A resumed run goes on in the checkpoint's directory, unless --out says where: its config.json
    // holds --out as it was given, relative to wherever that run was started, which would write
    // into (or beside) another run when a run's folder was copied or resumed from elsewhere.
    if (!resolved.resume.empty() && cmd->count("--out") == 0) {
      const std::filesystem::path dir = std::filesystem::path(resolved.resume).parent_path();
      resolved.out = dir.empty() ? "." : dir.string();
    }
    train::Trainer(resolved).run();
  };
}

train::TrainConfig resolve_for_checkpoint(CLI::App* cmd, const train::TrainConfig& given,
                                          const std::string& config_file, const std::string& checkpoint) {
  if (!config_file.empty()) return resolve_config(cmd, given, config_file);
  std::string carried = train::checkpoint_config_json(checkpoint);
  if (carried.empty()) return given;
  train::TrainConfig c = resolve_config_json(cmd, given, carried, checkpoint + " (its config)");
  // Where it runs is this machine's choice, not the training run's: a checkpoint trained on a GPU
  // is scored on the CPU unless --device says otherwise.
  c.device = given.device;
  c.threads = given.threads;
  c.kernels = given.kernels;
  return c;
}

void add_eval(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto weights = std::make_shared<std::string>();
  auto batch = std::make_shared<int64_t>(256);
  auto split = std::make_shared<std::string>("test");
  CLI::App* cmd = app.add_subcommand("eval", "score a checkpoint or state_dict on a data set; prints JSON");
  add_model_data_flags(cmd, *config);
  cmd->add_option("--weights", *weights, "weights: a state_dict or checkpoint .safetensors")->required();
  cmd->add_option("--batch", *batch, "batch size")->capture_default_str();
  cmd->add_option("--split", *split, "test | train")->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  actions()[cmd] = [cmd, given = config, weights, batch, split] {
    // A training checkpoint brings its model and data (flags given win), as inspect.
    auto config = std::make_shared<train::TrainConfig>(resolve_for_checkpoint(cmd, *given, "", *weights));
    train::apply_runtime_settings(config->threads, config->kernels);
    io::Dataset train_set = io::load_dataset(config->data, true);
    io::Dataset data = *split == "train" ? train_set : io::load_dataset(config->data, false);
    if (data.test_is_train)
      std::fprintf(stderr, "warning: eval: %s has no test set of its own; --split test scores the training images\n",
                   config->data.c_str());
    const Shape& s = data.images.shape();
    nn::ModulePtr model = train::build_model(*config, s[1], train_set.num_classes, s[2]);
    train::load_weights(*weights, *model);
    model->to(train::run_device(*config));
    io::DataLoader loader(data, {.batch_size = *batch, .shuffle = false},
                          train::default_normalization(config->data, train_set));
    train::EvalResult r = train::evaluate(*model, loader);
    nlohmann::json out{{"weights", *weights},
                       {"data", config->data},
                       {"split", *split},
                       {"images", r.count},
                       {"loss", r.loss},
                       {"accuracy", r.accuracy},
                       {"test_is_train", *split == "test" && data.test_is_train}};
    std::printf("%s\n", out.dump().c_str());
  };
}

void add_info(CLI::App& app) {
  CLI::App* models = app.add_subcommand("models", "list the model zoo");
  actions()[models] = [] {
    for (const auto& name : nn::model_names()) {
      nn::ModulePtr m = nn::make_model(name, name == "resnet8" ? 3 : 1, 10, name == "resnet8" ? 32 : 28);
      std::printf("%-12s %10lld parameters\n", name.c_str(), (long long)m->num_parameters());
    }
  };
  CLI::App* kernels_cmd = app.add_subcommand("kernels", "list kernel variants (select with --kernel or GS_KERNELS)");
  actions()[kernels_cmd] = [] {
    kernels::register_all_cpu_tables();
    // A GS_KERNELS that names no variant is an error here too (listing its op's variants), not
    // a list printed as if the selection were fine.
    kernels::check_selection_against_every_table();
    const auto table = kernels::list_variants();
    int width = 0;  // the longest op name: one column of variants
    for (const auto& [op, variants] : table) width = std::max(width, static_cast<int>(op.size()));
    for (const auto& [op, variants] : table) {
      std::printf("%-*s", width, op.c_str());
      for (const auto& v : variants) std::printf(" %s", v.c_str());
      std::printf("\n");
    }
  };
}

namespace {
std::vector<std::pair<int, AddCommand>>& registered_commands() {
  static std::vector<std::pair<int, AddCommand>> commands;
  return commands;
}
}  // namespace

CommandRegistration::CommandRegistration(int order, AddCommand add) { registered_commands().emplace_back(order, add); }

void add_all_commands(CLI::App& app) {
  auto commands = registered_commands();
  std::stable_sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, add] : commands) add(app);
}

void run_selected(CLI::App& app) {
  for (auto* sub : app.get_subcommands()) {
    auto it = actions().find(sub);
    if (it != actions().end()) it->second();
  }
}

const CommandRegistration register_train{10, add_train};
const CommandRegistration register_eval{20, add_eval};
const CommandRegistration register_info{30, add_info};

FirstBatch first_batch_and_model(const train::TrainConfig& c, const char* command) {
  const Device device = train::run_device(c);
  train::apply_runtime_settings(c.threads, c.kernels);
  manual_seed(c.seed);
  io::Dataset data = io::load_dataset(c.data, true);
  GS_CHECK(c.batch_size > 0 && c.batch_size <= data.size(), "%s: --batch must be in 1..%lld, got %lld", command,
           (long long)data.size(), (long long)c.batch_size);
  io::DataLoader loader(
      data, {.batch_size = c.batch_size, .shuffle = false, .drop_last = false, .seed = c.seed, .prefetch = 0},
      train::default_normalization(c.data, data));
  loader.start_epoch(0);
  FirstBatch out;
  loader.next(out.batch);
  const Shape& s = data.images.shape();
  out.model = train::build_model(c, s[1], data.num_classes, s[2]);
  if (!c.weights.empty()) train::load_weights(c.weights, *out.model);
  out.model->to(device);
  out.batch.images = out.batch.images.to(device);
  out.batch.labels = out.batch.labels.to(device);
  out.model->train();
  return out;
}

}  // namespace gs::cli

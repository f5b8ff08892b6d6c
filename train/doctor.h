// `gradscope doctor`: the classic training-debugging checklist, run for you. Each measure_* builds
// a fresh, seeded model (and optimizer) from the setup, runs briefly, and returns the numbers that
// the pure verdict rules of inspect/doctor_checks.h judge. run_doctor runs them all in order.
//
//   train::DoctorSetup setup = train::make_doctor_setup(config, options);   // loads --data
//   train::DoctorReport report = train::run_doctor(setup, options);
//   train::write_doctor_report(out_dir, report);      // doctor.json + doctor.html (train/doctor_report.h)
//
// Data sizes: the data check reads the whole train and test sets (hashes for duplicates); input,
// activation and dead-unit statistics use `sample` training images; gradients, the LR range test
// and the fit run use a stratified `fit_images` subset and a held-out `val_images` validation set.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "inspect/doctor_checks.h"
#include "io/dataset.h"
#include "io/transforms.h"
#include "layers/module.h"
#include "train/config.h"
#include "train/lr_finder.h"

namespace gs::train {

struct DoctorOptions {
  int64_t sample = 512;         // images for input/activation statistics and dead units
  int64_t overfit_batch = 32;   // the one batch to overfit
  int64_t overfit_steps = 200;  // at most this many steps (stops at the target loss)
  int64_t grad_steps = 10;      // optimizer steps between "at init" and "after" gradient norms
  int64_t lr_steps = 100;       // LR range test steps
  int64_t fit_images = 4000;    // training images of the short fit run (also gradients, LR test)
  int64_t val_images = 1000;    // held-out training images for the validation curve
  int64_t fit_epochs = 3;
  bool shuffle_labels = false;  // plant a bug: permute the training labels (a demonstration)
  bool progress = true;         // one line per check on stderr
};

// What the checks run on. make_model() returns a fresh model seeded with config.seed (with
// config.weights loaded when given), in train mode, on the cpu; the measurements move it and
// their batches to `device` (config.device, checked), and read what they measure through host copies.
struct DoctorSetup {
  TrainConfig config;
  Device device = Device::cpu();
  io::Dataset train, test;     // whole training set (labels permuted with shuffle_labels) and test set
  io::Dataset fit_train, val;  // the short run's training subset and validation set (disjoint)
  std::shared_ptr<io::Transform> normalization, augmentation;  // augmentation may be null
  std::function<nn::ModulePtr()> make_model;
  CrossEntropyOptions loss;  // training_loss(config, fit_train): the gradient, LR and fit runs' criterion
};

// From already loaded data (tests use synthetic sets); `make_model` as above. Splits fit_train/val.
DoctorSetup make_doctor_setup(const TrainConfig& config, io::Dataset train, io::Dataset test,
                              std::shared_ptr<io::Transform> normalization, std::function<nn::ModulePtr()> make_model,
                              const DoctorOptions& options);
// Loads config.data (minus config.exclude_list), uses default_normalization and build_model as `train` does.
DoctorSetup make_doctor_setup(const TrainConfig& config, const DoctorOptions& options);

// ---- measurements (each independent; every one starts from a fresh model) ----
struct LayerActivation {
  std::string layer, type;
  double mean = 0, std = 0, zero_fraction = 0;
};
struct InitPass {
  std::vector<std::string> leaf_types;              // leaf modules in forward order
  std::vector<LayerActivation> activations;         // per leaf module call, over the sample
  double loss = 0;                                  // mean cross-entropy over the sample
  double negative_output_fraction = 0;              // of the nonzero model outputs (-1: all are 0)
  std::vector<inspect::DeadUnitLayer> relu_layers;  // dead_at_init filled
};
inspect::DataSummary measure_data(const DoctorSetup& setup, const DoctorOptions& options);
InitPass measure_init(const DoctorSetup& setup, const DoctorOptions& options);
// Losses on one fixed batch (no augmentation, dropout off), step 0 before any update.
std::vector<double> measure_overfit_batch(const DoctorSetup& setup, const DoctorOptions& options);
inspect::LayerGradNorms measure_gradients(const DoctorSetup& setup, const DoctorOptions& options);
LRFinderResult measure_lr(const DoctorSetup& setup, const DoctorOptions& options);
struct FitRun {
  double initial_loss = 0;                 // first batch, before any update
  std::vector<double> step_losses;         // every training step
  std::vector<inspect::EpochPoint> curve;  // one point per epoch
  nn::ModulePtr model;                     // the trained model
  int64_t train_images = 0, val_images = 0;  // what it ran on (--fit-images and --val-images, as many as there are)
};
FitRun measure_fit(const DoctorSetup& setup, const DoctorOptions& options);
// Fraction of ReLU units always zero over the sample (train mode: BN uses batch statistics at init;
// eval mode for a trained model). Adds or updates one entry per ReLU call site in `layers`.
void measure_dead_units(nn::Module& model, bool train_mode, const DoctorSetup& setup, const DoctorOptions& options,
                        std::vector<inspect::DeadUnitLayer>& layers, bool after_training);

struct DoctorReport {
  std::string model, data, device;
  std::vector<inspect::CheckResult> checks;
  double seconds = 0;
  // what the plots show
  InitPass init;
  inspect::LayerGradNorms gradients;
  std::vector<double> overfit_losses;
  LRFinderResult lr_find;
  FitRun fit;
  std::vector<inspect::DeadUnitLayer> dead_units;  // at init and after the short run
  inspect::Verdict verdict() const { return inspect::worst_verdict(checks); }
};
DoctorReport run_doctor(const DoctorSetup& setup, const DoctorOptions& options);

}  // namespace gs::train

// `gradscope doctor`: runs the training-debugging checks (train/doctor.h) on the model, data and
// optimizer that the same flags would give `train`; prints the report, writes doctor.json and doctor.html.
// Exit code 3 when a check found a problem (warnings alone exit 0), so scripts and CI can gate on it.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "tensor/error.h"
#include "train/doctor.h"
#include "train/doctor_report.h"
#include "train/trainer.h"

namespace gs::cli {

namespace {
constexpr int kExitProblem = 3;
}

void add_doctor(CLI::App& app) {
  auto config = std::make_shared<train::TrainConfig>();
  auto options = std::make_shared<train::DoctorOptions>();
  auto config_file = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("runs/doctor");
  CLI::App* cmd = app.add_subcommand(
      "doctor",
      "run the training-debugging checklist (data, final layer, loss at init, overfit one batch, gradients, LR range "
      "test, fit, dead units); prints verdicts with evidence and suggestions, writes doctor.json and doctor.html to "
      "--out. Exit code: 0 when no check found a problem (warnings allowed), 3 when one did, 2 bad input. "
      "Validation uses --val-images held-out training images (--val-fraction is not used). --device cuda runs the "
      "models there (the statistics are read through host copies)");
  train::TrainConfig& c = *config;
  add_model_data_flags(cmd, c);
  add_optimizer_data_flags(cmd, c);
  cmd->add_option("--config", *config_file,
                  "take model/data/optimizer from a run's config.json (flags given override)");
  cmd->add_option("--lr", c.lr, "learning rate to check (the peak lr for onecycle)")->capture_default_str();
  cmd->add_option("--schedule", c.schedule, "lr schedule of the short fit run (as train --schedule)")
      ->capture_default_str();
  cmd->add_option("--out", *out, "output directory (doctor.json, doctor.html)")->capture_default_str();
  cmd->add_option("--sample", options->sample, "training images for input, activation and dead-unit statistics")
      ->capture_default_str();
  cmd->add_option("--overfit-batch", options->overfit_batch, "size of the one batch to overfit")->capture_default_str();
  cmd->add_option("--overfit-steps", options->overfit_steps, "at most this many steps to overfit it")
      ->capture_default_str();
  cmd->add_option("--grad-steps", options->grad_steps, "optimizer steps between the two gradient-norm measurements")
      ->capture_default_str();
  cmd->add_option("--lr-steps", options->lr_steps, "steps of the LR range test")->capture_default_str();
  cmd->add_option("--fit-images", options->fit_images,
                  "training images of the short fit run (a stratified subset; also used by the gradient and LR checks)")
      ->capture_default_str();
  cmd->add_option("--val-images", options->val_images, "held-out training images for the validation curve")
      ->capture_default_str();
  cmd->add_option("--fit-epochs", options->fit_epochs, "epochs of the short fit run")->capture_default_str();
  cmd->add_flag("--shuffle-labels", options->shuffle_labels,
                "plant a bug: permute the training labels (to see what the doctor says about it)");
  cmd->add_flag("!--no-progress", options->progress, "no per-check progress lines on stderr");
  register_action(cmd, [config, options, config_file, out, cmd] {
    train::TrainConfig run = resolve_config(cmd, *config, *config_file);
    run.check_values("doctor");
    // Before any check: a bad lr used to surface as a scheduler's error after minutes of checks.
    GS_CHECK(run.lr > 0, "doctor: --lr must be > 0 (every check but the data's steps the optimizer), got %g", run.lr);
    const Device device = train::run_device(run);  // before the data is loaded: a missing GPU fails at once
    int threads = train::apply_runtime_settings(run.threads, run.kernels);
    std::fprintf(stderr, "gradscope doctor: %s on %s, %s lr %g, batch %lld, %s, %d threads -> %s\n",
                 run.model_spec.empty() ? run.model.c_str() : run.model_spec.c_str(), run.data.c_str(),
                 run.optimizer.c_str(), run.lr, (long long)run.batch_size, device.str().c_str(), threads, out->c_str());
    bool problem = false;
    {
      train::DoctorSetup setup = train::make_doctor_setup(run, *options);
      train::DoctorReport report = train::run_doctor(setup, *options);
      train::write_doctor_report(*out, report, run, *options);
      std::fputs(train::doctor_text(report).c_str(), stdout);
      std::printf("report: %s/doctor.html, %s/doctor.json\n", out->c_str(), out->c_str());
      problem = report.verdict() == inspect::Verdict::Problem;
    }
    std::fflush(stdout);
    if (problem) std::exit(kExitProblem);
  });
}

const CommandRegistration register_doctor{42, add_doctor};

}  // namespace gs::cli

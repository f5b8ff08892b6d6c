// The doctor's report files: doctor.json (every check's verdict, evidence and suggestions, plus the
// numbers behind the plots) and doctor.html (one self-contained page: the checks and inline SVG
// plots of gradient norms per layer, activation statistics per layer, dead units, the overfit-one-batch
// loss, the LR range test and the fit curves; no scripts, no external assets). Both written atomically.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "train/doctor.h"

namespace gs::train {

nlohmann::json doctor_json(const DoctorReport& report, const TrainConfig& config, const DoctorOptions& options);
std::string doctor_html(const DoctorReport& report, const TrainConfig& config, const DoctorOptions& options);
// The console report: one block per check (verdict, summary, suggestions) and the overall verdict.
std::string doctor_text(const DoctorReport& report);
// <dir>/doctor.json and <dir>/doctor.html (creates dir).
void write_doctor_report(const std::string& dir, const DoctorReport& report, const TrainConfig& config,
                         const DoctorOptions& options);

}  // namespace gs::train

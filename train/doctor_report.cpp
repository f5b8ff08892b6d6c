// doctor.json, doctor.html (inline SVG charts drawn here) and the console text of a DoctorReport.
#include "train/doctor_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "io/safetensors.h"
#include "tensor/error.h"

namespace gs::train {

using nlohmann::json;

namespace {

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
json nums(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(num(x));
  return a;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

const char* verdict_colour(inspect::Verdict v) {
  switch (v) {
    case inspect::Verdict::Ok: return "#2e7d32";
    case inspect::Verdict::Warning: return "#ef6c00";
    case inspect::Verdict::Problem: return "#c62828";
  }
  return "#000";
}

// ---------------- SVG charts ----------------

struct Series {
  std::string name, colour;
  std::vector<double> x, y;  // y may hold NaN/Inf (gaps)
  bool dashed = false, markers = false;
  double width = 2;
};

constexpr double kW = 760, kH = 330, kLeft = 70, kRight = 20, kTop = 36, kBottom = 70;

// A line chart. With `categories` the x axis is categorical (labels rotated), x values are indices.
std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series, bool log_y, const std::vector<std::string>& categories = {}) {
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" font-family=\"sans-serif\" font-size=\"11\" class=\"chart\">\n<rect width=\"100%\" height=\"100%\" "
       "fill=\"white\"/>\n<text x=\""
    << kW / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << escape(title) << "</text>\n";
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& se : series) {
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      double y = se.y[i];
      if (!std::isfinite(y) || (log_y && y <= 0)) continue;
      if (log_y) y = std::log10(y);
      x_lo = std::min(x_lo, se.x[i]), x_hi = std::max(x_hi, se.x[i]);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  }
  if (!(x_lo <= x_hi)) {
    s << "<text x=\"" << kW / 2 << "\" y=\"" << kH / 2 << "\" text-anchor=\"middle\">no finite values</text>\n</svg>\n";
    return s.str();
  }
  if (!categories.empty()) x_lo = -0.5, x_hi = double(categories.size()) - 0.5;
  if (x_hi <= x_lo) x_hi = x_lo + 1;
  if (log_y) {
    y_lo = std::floor(y_lo), y_hi = std::ceil(y_hi);
    if (y_hi <= y_lo) y_hi = y_lo + 1;
  } else {
    double pad = y_hi > y_lo ? 0.06 * (y_hi - y_lo) : 0.5;
    y_lo -= pad, y_hi += pad;
  }
  auto X = [&](double x) { return kLeft + (x - x_lo) / (x_hi - x_lo) * (kW - kLeft - kRight); };
  auto Y = [&](double y) { return kTop + (y_hi - y) / (y_hi - y_lo) * (kH - kTop - kBottom); };
  s << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << kW - kLeft - kRight << "\" height=\""
    << kH - kTop - kBottom << "\" fill=\"none\" stroke=\"#444\"/>\n";
  // y ticks: decades (log) or five even steps
  const int y_steps = log_y ? int(y_hi - y_lo) : 4;
  for (int k = 0; k <= y_steps; ++k) {
    double v = y_lo + (y_hi - y_lo) * k / std::max(y_steps, 1), y = Y(v);
    s << "<line x1=\"" << kLeft << "\" y1=\"" << y << "\" x2=\"" << kW - kRight << "\" y2=\"" << y
      << "\" stroke=\"#eee\"/>\n<text x=\"" << kLeft - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">"
      << (log_y ? format("1e%d", int(std::lround(v))) : format("%.3g", v)) << "</text>\n";
  }
  // x ticks: categories (rotated) or five even steps
  if (!categories.empty()) {
    for (size_t i = 0; i < categories.size(); ++i) {
      double x = X(double(i)), y = kH - kBottom + 12;
      s << "<text x=\"" << x << "\" y=\"" << y << "\" text-anchor=\"end\" transform=\"rotate(-35 " << x << " " << y
        << ")\">" << escape(categories[i]) << "</text>\n";
    }
  } else {
    for (int k = 0; k <= 4; ++k) {
      double v = x_lo + (x_hi - x_lo) * k / 4;
      s << "<text x=\"" << X(v) << "\" y=\"" << kH - kBottom + 16 << "\" text-anchor=\"middle\">" << format("%.4g", v)
        << "</text>\n";
    }
    s << "<text x=\"" << (kLeft + kW - kRight) / 2 << "\" y=\"" << kH - kBottom + 36 << "\" text-anchor=\"middle\">"
      << escape(x_label) << "</text>\n";
  }
  s << "<text x=\"14\" y=\"" << (kTop + kH - kBottom) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << (kTop + kH - kBottom) / 2 << ")\">" << escape(y_label) << (log_y ? " (log)" : "") << "</text>\n";
  int legend_row = 0;
  for (const auto& se : series) {
    // one polyline per run of finite points
    std::ostringstream pts;
    auto flush = [&] {
      if (!pts.str().empty())
        s << "<polyline fill=\"none\" stroke=\"" << se.colour << "\" stroke-width=\"" << se.width << "\""
          << (se.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"" << pts.str() << "\"/>\n";
      pts.str("");
    };
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      double y = se.y[i];
      if (!std::isfinite(y) || (log_y && y <= 0)) {
        flush();
        continue;
      }
      double px = X(se.x[i]), py = Y(log_y ? std::log10(y) : y);
      pts << px << "," << py << " ";
      if (se.markers) s << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"3\" fill=\"" << se.colour << "\"/>\n";
    }
    flush();
    if (!se.name.empty()) {
      double ly = kTop + 14 + 15 * legend_row++;
      s << "<line x1=\"" << kW - kRight - 150 << "\" y1=\"" << ly - 4 << "\" x2=\"" << kW - kRight - 130 << "\" y2=\""
        << ly - 4 << "\" stroke=\"" << se.colour << "\" stroke-width=\"3\"/><text x=\"" << kW - kRight - 125
        << "\" y=\"" << ly << "\">" << escape(se.name) << "</text>\n";
    }
  }
  s << "</svg>\n";
  return s.str();
}

std::vector<double> iota(size_t n, double start = 0) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + double(i);
  return v;
}

std::string plots_html(const DoctorReport& r) {
  std::ostringstream h;
  auto figure = [&](const std::string& svg, const std::string& caption) {
    h << "<figure>" << svg << "<figcaption>" << escape(caption) << "</figcaption></figure>\n";
  };
  const auto& g = r.gradients;
  if (!g.layers.empty()) {
    figure(line_chart("Gradient norm per layer", "", "gradient norm",
                      {{"at init", "#1f77b4", iota(g.layers.size()), g.at_init, false, true},
                       {format("after %lld steps", (long long)g.steps), "#d62728", iota(g.layers.size()), g.after, true,
                        true}},
                      true, g.layers),
           "Weight gradient norms, input side on the left. Vanishing: the left end far below the right; exploding: "
           "growing after a few steps.");
    figure(line_chart("Global gradient norm per step", "step", "gradient norm",
                      {{"", "#1f77b4", iota(g.total_per_step.size()), g.total_per_step, false, true}}, true),
           "The global gradient norm over the first optimizer steps at the chosen learning rate.");
  }
  const auto& acts = r.init.activations;
  if (!acts.empty()) {
    std::vector<std::string> names;
    std::vector<double> mean, std_, zero;
    for (const auto& a : acts) {
      names.push_back(a.layer + " " + a.type);
      mean.push_back(a.mean), std_.push_back(a.std), zero.push_back(a.zero_fraction);
    }
    figure(line_chart("Activation mean and std per layer (at init)", "", "value",
                      {{"mean", "#1f77b4", iota(acts.size()), mean, false, true},
                       {"std", "#ff7f0e", iota(acts.size()), std_, false, true}},
                      false, names),
           "Output statistics of each layer over the sample at init: std should stay of order 1 through the net.");
    figure(line_chart("Fraction of exact zeros per layer (at init)", "", "fraction zero",
                      {{"", "#9467bd", iota(acts.size()), zero, false, true}}, false, names),
           "A ReLU layer near 0.5 is normal; near 1 means most units output nothing.");
  }
  const auto& dead = r.dead_units;
  if (!dead.empty()) {
    std::vector<std::string> names;
    std::vector<double> init, after;
    for (const auto& l : dead) names.push_back(l.layer), init.push_back(l.dead_at_init), after.push_back(l.dead_after);
    figure(line_chart("Dead ReLU units per layer", "", "fraction dead",
                      {{"at init", "#1f77b4", iota(dead.size()), init, false, true},
                       {"after the short run", "#d62728", iota(dead.size()), after, true, true}},
                      false, names),
           "Units (features, or conv channels) that are zero for every image of the sample.");
  }
  if (!r.overfit_losses.empty()) {
    figure(line_chart("Overfit one batch", "step", "loss",
                      {{"", "#2ca02c", iota(r.overfit_losses.size()), r.overfit_losses, false, false}}, true),
           format("Loss on one fixed batch; target %.2g.", inspect::kOverfitLoss));
  }
  if (!r.lr_find.points.empty()) figure(lr_find_svg(r.lr_find), "LR range test on the fit subset.");
  if (!r.fit.step_losses.empty()) {
    const size_t steps = r.fit.step_losses.size(), epochs = r.fit.curve.size();
    const double per_epoch = epochs ? double(steps) / double(epochs) : 1;
    std::vector<double> ex, train_loss, val_loss;
    for (size_t e = 0; e < epochs; ++e) {
      ex.push_back(per_epoch * double(e + 1));
      train_loss.push_back(r.fit.curve[e].train_loss), val_loss.push_back(r.fit.curve[e].val_loss);
    }
    figure(line_chart("Short run: training and validation loss", "step", "loss",
                      {{"train (per step)", "#bbbbbb", iota(steps), r.fit.step_losses, false, false, 1},
                       {"train (epoch mean)", "#1f77b4", ex, train_loss, false, true},
                       {"validation", "#d62728", ex, val_loss, false, true}},
                      false),
           "Overfitting: validation loss rising while training loss keeps falling; underfitting: both high.");
  }
  return h.str();
}

}  // namespace

json doctor_json(const DoctorReport& r, const TrainConfig& config, const DoctorOptions& o) {
  json checks = json::array();
  for (const auto& c : r.checks) checks.push_back(c.to_json());
  json acts = json::array();
  for (const auto& a : r.init.activations)
    acts.push_back({{"layer", a.layer},
                    {"type", a.type},
                    {"mean", num(a.mean)},
                    {"std", num(a.std)},
                    {"zero_fraction", num(a.zero_fraction)}});
  json lr_curve = json::array();
  for (const auto& p : r.lr_find.points) lr_curve.push_back({num(p.lr), num(p.loss), num(p.smoothed_loss)});
  json curve = json::array();
  for (const auto& p : r.fit.curve)
    curve.push_back({{"train_loss", num(p.train_loss)},
                     {"val_loss", num(p.val_loss)},
                     {"train_acc", num(p.train_acc)},
                     {"val_acc", num(p.val_acc)}});
  return json{{"verdict", inspect::verdict_name(r.verdict())},
              {"model", r.model},
              {"data", r.data},
              {"device", r.device},
              {"seconds", r.seconds},
              {"checks", checks},
              {"options",
               {{"sample", o.sample},
                {"overfit_batch", o.overfit_batch},
                {"overfit_steps", o.overfit_steps},
                {"grad_steps", o.grad_steps},
                {"lr_steps", o.lr_steps},
                {"fit_images", o.fit_images},
                {"val_images", o.val_images},
                {"fit_epochs", o.fit_epochs},
                {"shuffle_labels", o.shuffle_labels}}},
              {"config", json::parse(config.to_json())},
              {"plots",
               {{"gradients",
                 {{"layers", r.gradients.layers},
                  {"at_init", nums(r.gradients.at_init)},
                  {"after", nums(r.gradients.after)},
                  {"steps", r.gradients.steps},
                  {"global_norm_per_step", nums(r.gradients.total_per_step)}}},
                {"activations", acts},
                {"overfit_losses", nums(r.overfit_losses)},
                {"lr_find", {{"lr_loss_smoothed", lr_curve}, {"suggested_lr", r.lr_find.suggested_lr}}},
                {"fit", {{"step_losses", nums(r.fit.step_losses)}, {"curve", curve}}}}}};
}

std::string doctor_html(const DoctorReport& r, const TrainConfig& config, const DoctorOptions& o) {
  std::ostringstream h;
  const inspect::Verdict overall = r.verdict();
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>gradscope doctor: " << escape(r.model)
    << "</title>\n<style>\n"
       "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222;background:#fafafa}\n"
       "table{border-collapse:collapse;width:100%;background:white}td,th{border:1px solid #ccc;padding:6px 8px;"
       "vertical-align:top;text-align:left}\n"
       ".pill{color:white;border-radius:10px;padding:2px 10px;font-weight:bold;display:inline-block}\n"
       "figure{background:white;border:1px solid #ddd;margin:16px 0;padding:8px}figcaption{color:#555;font-size:13px}\n"
       "pre{font-size:11px;white-space:pre-wrap;margin:4px 0}ul{margin:4px 0;padding-left:18px}\n"
       "</style></head><body>\n";
  h << "<h1>gradscope doctor</h1>\n<p>Model <b>" << escape(r.model) << "</b> on <b>" << escape(r.data) << "</b> ("
    << escape(r.device) << "), " << escape(config.optimizer) << " lr " << format("%g", config.lr) << ", batch "
    << config.batch_size << ". Overall: "
    << "<span class=\"pill\" style=\"background:" << verdict_colour(overall) << "\">" << inspect::verdict_name(overall)
    << "</span> (" << format("%.0f", r.seconds) << " s; fit run " << o.fit_epochs << " epochs on " << r.fit.train_images
    << " images" << (o.shuffle_labels ? "; labels shuffled on purpose" : "") << ")</p>\n";
  h << "<table id=\"checks\"><tr><th>check</th><th>verdict</th><th>finding and suggestions</th></tr>\n";
  for (const auto& c : r.checks) {
    h << "<tr class=\"check\" data-verdict=\"" << inspect::verdict_name(c.verdict) << "\"><td>" << escape(c.title)
      << "</td><td><span class=\"pill\" style=\"background:" << verdict_colour(c.verdict) << "\">"
      << inspect::verdict_name(c.verdict) << "</span></td><td>" << escape(c.summary);
    if (!c.suggestions.empty()) {
      h << "<ul>";
      for (const auto& s : c.suggestions) h << "<li>" << escape(s) << "</li>";
      h << "</ul>";
    }
    h << "<details><summary>evidence</summary><pre>" << escape(c.evidence.dump(1)) << "</pre></details></td></tr>\n";
  }
  h << "</table>\n<h2>Plots</h2>\n" << plots_html(r) << "</body></html>\n";
  return h.str();
}

std::string doctor_text(const DoctorReport& r) {
  std::ostringstream s;
  for (const auto& c : r.checks) {
    s << format("%-8s %-26s %s\n", inspect::verdict_name(c.verdict).c_str(), c.title.c_str(), c.summary.c_str());
    for (const auto& sug : c.suggestions) s << "         -> " << sug << "\n";
  }
  int problems = 0, warnings = 0;
  for (const auto& c : r.checks) {
    problems += c.verdict == inspect::Verdict::Problem;
    warnings += c.verdict == inspect::Verdict::Warning;
  }
  s << format("doctor: %s (%d problem%s, %d warning%s, %zu checks, %.0f s)\n",
              inspect::verdict_name(r.verdict()).c_str(), problems, problems == 1 ? "" : "s", warnings,
              warnings == 1 ? "" : "s", r.checks.size(), r.seconds);
  return s.str();
}

void write_doctor_report(const std::string& dir, const DoctorReport& r, const TrainConfig& config,
                         const DoctorOptions& o) {
  std::filesystem::create_directories(dir);
  io::write_file_atomic(dir + "/doctor.json", doctor_json(r, config, o).dump(2) + "\n");
  io::write_file_atomic(dir + "/doctor.html", doctor_html(r, config, o));
}

}  // namespace gs::train

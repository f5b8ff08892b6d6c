// A live progress bar on stderr: epoch, step/total, loss, accuracy, images/s, ETA. Redraws in
// place on a terminal; elsewhere (logs, CI) prints a line every 10% so output stays readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace gs::train {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled);
  void update(int64_t done, double loss, double accuracy, double images_per_s);
  void finish(const std::string& summary);  // always printed: one log line per epoch

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);  // "1:02:03" or "2:03"

}  // namespace gs::train

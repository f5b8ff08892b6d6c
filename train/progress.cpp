// Progress bar rendering.
#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace gs::train {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(isatty(2)),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(int64_t done, double loss, double accuracy, double images_per_s) {
  if (!enabled_ || total_ <= 0) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double eta = done > 0 ? elapsed / done * (total_ - done) : -1;
  int decile = static_cast<int>(done * 10 / total_);
  if (!tty_ && decile == last_decile_) return;
  last_decile_ = decile;
  const int width = 24;
  int filled = static_cast<int>(width * done / total_);
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld loss %.4f acc %5.1f%% %6.0f img/s ETA %s%s", tty_ ? "\r" : "",
               label_.c_str(), bar.c_str(), (long long)done, (long long)total_, loss, 100 * accuracy, images_per_s,
               format_duration(eta).c_str(), tty_ ? "\033[K" : "\n");
  std::fflush(stderr);
}

void ProgressBar::finish(const std::string& summary) {
  // The epoch summary is a log line, printed with or without the bar.
  std::fprintf(stderr, "%s%s %s\n", enabled_ && tty_ ? "\r\033[K" : "", label_.c_str(), summary.c_str());
  std::fflush(stderr);
}

}  // namespace gs::train

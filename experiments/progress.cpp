#include "experiments/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace peftlab {

Progress::Progress(std::string label, int64_t total_steps, int64_t every, bool enabled)
    : label_(std::move(label)), total_(total_steps), every_(every > 0 ? every : 10), enabled_(enabled),
      terminal_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

static std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60) : fmt::format("{:02}:{:02}", s / 60, s % 60);
}

void Progress::update(int64_t step, double loss, double tokens_per_s) {
  if (!enabled_) return;
  if (first_step_ < 0) first_step_ = step - 1, start_ = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double per_step = step > first_step_ ? elapsed / static_cast<double>(step - first_step_) : 0.0;
  const std::string eta = format_duration(per_step * static_cast<double>(total_ - step));
  if (terminal_) {
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : 0;
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %s ", label_.c_str(), bar.c_str(),
                 static_cast<long long>(step), static_cast<long long>(total_), loss, tokens_per_s, eta.c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else if (step % every_ == 0 || step == total_) {
    std::fprintf(stderr, "%s step %lld/%lld loss %.4f %.0f tok/s ETA %s\n", label_.c_str(), static_cast<long long>(step),
                 static_cast<long long>(total_), loss, tokens_per_s, eta.c_str());
  }
}

void Progress::message(const std::string& text) {
  if (!enabled_) return;
  if (drawn_) std::fprintf(stderr, "\n"), drawn_ = false;
  std::fprintf(stderr, "%s %s\n", label_.c_str(), text.c_str());
}

void Progress::finish() {
  if (enabled_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace peftlab

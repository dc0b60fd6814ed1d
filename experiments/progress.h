// Training progress: on a terminal a bar redrawn in place (step, loss, ETA, tokens/s); otherwise plain
// periodic lines, so logs from Slurm or `tee` stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace peftlab {

class Progress {
 public:
  // `every`: optimizer steps between plain lines (a bar redraws every step).
  Progress(std::string label, int64_t total_steps, int64_t every, bool enabled = true);
  void update(int64_t step, double loss, double tokens_per_s);
  void message(const std::string& text);  // a line that does not break the bar
  void finish();

 private:
  std::string label_;
  int64_t total_, every_;
  bool enabled_, terminal_, drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  int64_t first_step_ = -1;
};

}  // namespace peftlab

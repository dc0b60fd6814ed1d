// Carries out one resolved run (experiments/sweep.h): loads the model, attaches the method, trains with the one
// training loop every method shares, evaluates, and records everything in <run dir>/run.h5.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/recorder.h"
#include "experiments/distributed.h"
#include "experiments/sweep.h"

namespace peftlab {

struct RunnerOptions {
  bool resume = false;       // continue from <run dir>/checkpoint.pt when there is one
  bool progress = true;      // progress bar / periodic lines on stderr
  int threads = 0;           // recorded in provenance (the process has set LibTorch's count)
  const DataParallel* parallel = nullptr;  // data-parallel group of this process; null: one process
};

// Runs `run` in run.dir; returns the final status written to the run file. A second process on the same
// folder is refused (lock file); a lock left by a dead process does not block.
RunStatus execute_run(const RunSpec& run, const RunnerOptions& options);

// Set by SIGINT/SIGTERM: the loop checkpoints, marks the run interrupted and returns.
void request_stop();
// The signal that stopped the run (SIGINT for request_stop()), 0 when none came.
int stop_signal_received();
void install_stop_handlers();

}  // namespace peftlab

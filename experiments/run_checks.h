// What `validate`, `plan` and `run` check before any run starts, beyond the spec's own text: each run's
// model config (config.json or the llama2.c header, never the weights), its device, its task's sequence
// length against the model's context, and its method's plan on that model (ranks, targets). A problem is an
// InputError at the spec's file and line, so that a spec that validates does not fail later at run time on
// something the spec, the model's config or the data could have told.
#pragma once

#include <vector>

#include "experiments/sweep.h"

namespace peftlab {

void check_runs(const std::vector<RunSpec>& runs);

}  // namespace peftlab

// The smoke profile: `peftlab run SPEC --smoke` (and `validate --smoke`) runs any spec in seconds on the CPU,
// with the real stories260K model in place of the spec's model, two optimizer steps and an evaluation on one
// example per split, one seed, every run kind (task x method x sweep value) kept. It proves that a spec can
// run end to end (splits, task options, methods, sweeps) without the hardware or the time the spec asks for.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace peftlab {

// `--set` overrides, applied before the command line's own `--set`s (which win): the profile's, nulls for
// the schedule keys (epochs, max_steps, warm-up, eval_every, save_every, batch_size, grad_accum) that the
// spec's task or method entries set in their own train:, then the spec's own `smoke:` list (what the profile cannot know, e.g. target names for stories260K in a spec written
// for an encoder). Runs go to runs/smoke/<spec file stem> unless --out or a later `--set output.dir=...` says
// otherwise. An unreadable spec gives the profile alone (loading the spec then reports the problem).
std::vector<std::string> smoke_overrides(const std::filesystem::path& spec);

}  // namespace peftlab

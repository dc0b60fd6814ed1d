#include "experiments/smoke_profile.h"

#include <cstdint>

#include <yaml-cpp/yaml.h>

namespace peftlab {

namespace {

// The train keys that set a run's length, batch and evaluation schedule: the profile's own, which a task or
// method entry's train: settings would otherwise win over.
const char* const kScheduleKeys[] = {"epochs", "max_steps", "warmup_steps", "warmup_ratio", "eval_every",
                                     "save_every", "batch_size", "grad_accum"};

constexpr int64_t kSmokeTrainExamples = 256;  // room for a held-out count such as 120

// What the spec file itself (not its includes) adds: nulls for its entries' own schedule keys, then its
// `smoke:` list.
std::vector<std::string> spec_additions(const std::filesystem::path& spec) {
  std::vector<std::string> out;
  try {
    YAML::Node root = YAML::LoadFile(spec.string());
    if (!root.IsMap()) return out;
    // At most kSmokeTrainExamples training examples per task entry: a held-out share of the training split
    // (eval.validation) and the token cache would otherwise cover the whole split.
    YAML::Node tasks = root["tasks"];
    if (tasks && tasks.IsSequence())
      for (size_t i = 0; i < tasks.size(); ++i) {
        if (!tasks[i].IsMap()) continue;
        YAML::Node cap = tasks[i]["max_train_examples"];
        const bool smaller = cap && cap.IsScalar() && cap.as<int64_t>(0) > 0 && cap.as<int64_t>(0) <= kSmokeTrainExamples;
        if (!smaller)
          out.push_back("tasks." + std::to_string(i) + ".max_train_examples=" + std::to_string(kSmokeTrainExamples));
      }
    for (const char* list : {"tasks", "methods"}) {
      YAML::Node entries = root[list];
      if (!entries || !entries.IsSequence()) continue;
      for (size_t i = 0; i < entries.size(); ++i) {
        YAML::Node train = entries[i].IsMap() ? entries[i]["train"] : YAML::Node();
        if (!train || !train.IsMap()) continue;
        for (const char* key : kScheduleKeys)
          if (train[key]) out.push_back(std::string(list) + "." + std::to_string(i) + ".train." + key + "=null");
      }
    }
    YAML::Node smoke = root["smoke"];
    if (smoke && smoke.IsSequence())
      for (const auto& item : smoke)
        if (item.IsScalar()) out.push_back(item.Scalar());
  } catch (const YAML::Exception&) {
    // the spec loader reports it, with its line
  }
  return out;
}

}  // namespace

std::vector<std::string> smoke_overrides(const std::filesystem::path& spec) {
  std::vector<std::string> profile = {
      "model.path=${data}/models/stories260K/stories260K.bin",
      "model.tokenizer=${data}/models/stories260K/tok512.model",
      "model.dtype=float32",
      "model.device=cpu",
      "train.precision=fp32",
      // Two steps whatever the spec's run length was written as (steps or epochs, warm-up in steps or as a
      // ratio); null drops the spec's key so that the two forms never meet.
      "train.epochs=null",
      "train.max_steps=2",
      "train.warmup_steps=null",
      "train.warmup_ratio=null",
      "train.eval_every=null",
      "train.save_every=null",
      "train.batch_size=2",
      "train.grad_accum=1",
      "eval.max_examples=1",
      "eval.batch_size=2",
      // Test-split predictions cover the whole split whatever eval.max_examples says (a submission file is
      // whole or absent): thousands of examples, not seconds.
      "eval.write_predictions=false",
      "seeds=[0]",
      "output.dir=runs/smoke/" + spec.stem().string(),
  };
  for (auto& item : spec_additions(spec)) profile.push_back(std::move(item));
  return profile;
}

}  // namespace peftlab

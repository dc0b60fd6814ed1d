// A method entry's own `train:` settings: written over the spec's train section for that method's runs only,
// told apart in run ids, and an error where a sweep sets the same key.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "core/errors.h"
#include "experiments/spec.h"
#include "experiments/sweep.h"

namespace peftlab {
namespace {

const RunSpec& run_with_id(const std::vector<RunSpec>& runs, const std::string& id) {
  auto it = std::find_if(runs.begin(), runs.end(), [&](const RunSpec& r) { return r.id == id; });
  if (it == runs.end()) throw std::runtime_error("no run " + id);
  return *it;
}

TEST(MethodTrain, OverridesTheSpecsTrainForThatMethodOnly) {
  const std::string text = R"(name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - {name: full, train: {lr: 5.0e-5, weight_decay: 0.1}}
  - {name: lora, rank: 8, alpha: 16}
tasks:
  - name: sst2
train: {lr: 2.0e-3, batch_size: 4, max_steps: 10}
)";
  auto runs = expand_spec(load_spec_text(text, "s.yaml"));
  ASSERT_EQ(runs.size(), 2u);
  const RunSpec& full = run_with_id(runs, "sst2/full/seed0");
  const RunSpec& lora = run_with_id(runs, "sst2/lora-r8/seed0");
  EXPECT_DOUBLE_EQ(full.train.lr, 5.0e-5);
  EXPECT_DOUBLE_EQ(full.train.weight_decay, 0.1);
  EXPECT_EQ(full.train.batch_size, 4);  // the spec's other keys still hold
  EXPECT_DOUBLE_EQ(lora.train.lr, 2.0e-3);
  EXPECT_DOUBLE_EQ(lora.train.weight_decay, 0.0);
  EXPECT_FALSE(full.method["train"]) << "train: is the spec's, never the registry's";
  EXPECT_NE(full.resolved_yaml.find("lr: 5e-05"), std::string::npos) << full.resolved_yaml;
}

TEST(MethodTrain, EntriesThatDifferOnlyInTrainGetDistinctIds) {
  const std::string text = R"(name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - {name: lora, rank: 8, train: {lr: 1.0e-3}}
  - {name: lora, rank: 8, train: {lr: 3.0e-4}}
tasks:
  - name: sst2
train: {max_steps: 10}
)";
  auto runs = expand_spec(load_spec_text(text, "s.yaml"));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_DOUBLE_EQ(run_with_id(runs, "sst2/lora-r8-lr=1.0e-3/seed0").train.lr, 1.0e-3);
  EXPECT_DOUBLE_EQ(run_with_id(runs, "sst2/lora-r8-lr=3.0e-4/seed0").train.lr, 3.0e-4);
}

TEST(MethodTrain, TaskEntriesCarryTheirRecipeAndMethodsTheirs) {
  const std::string text = R"(name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - {name: full, train: {weight_decay: 0.1}}
  - {name: lora, rank: 8, alpha: 16}
tasks:
  - {name: sst2, train: {lr: 5.0e-4, batch_size: 16}}
  - {name: rte, train: {lr: 4.0e-4, epochs: 80}}
train: {lr: 2.0e-3, batch_size: 4, epochs: 2}
)";
  auto runs = expand_spec(load_spec_text(text, "s.yaml"));
  ASSERT_EQ(runs.size(), 4u);
  const RunSpec& sst2_full = run_with_id(runs, "sst2/full/seed0");
  EXPECT_DOUBLE_EQ(sst2_full.train.lr, 5.0e-4);
  EXPECT_EQ(sst2_full.train.batch_size, 16);
  EXPECT_EQ(sst2_full.train.epochs, 2);
  EXPECT_DOUBLE_EQ(sst2_full.train.weight_decay, 0.1);
  const RunSpec& rte_lora = run_with_id(runs, "rte/lora-r8/seed0");
  EXPECT_DOUBLE_EQ(rte_lora.train.lr, 4.0e-4);
  EXPECT_EQ(rte_lora.train.batch_size, 4);
  EXPECT_EQ(rte_lora.train.epochs, 80);
  EXPECT_DOUBLE_EQ(rte_lora.train.weight_decay, 0.0);
  EXPECT_FALSE(rte_lora.task["train"]) << "train: is the spec's, never the task registry's";

  // The same key from a task entry and a method entry is ambiguous.
  std::string both = text;
  both.replace(both.find("{weight_decay: 0.1}"), 19, "{lr: 1.0e-5}");
  try {
    expand_spec(load_spec_text(both, "s.yaml"));
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "s.yaml:4: train.lr is set by this method entry and by the task entry at line 7; keep one");
  }
}

TEST(MethodTrain, ErrorsNameTheirLine) {
  const std::string base = R"(name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - {name: lora, rank: 8,
     train: {lr: 1.0e-3}}
tasks:
  - name: sst2
train: {max_steps: 10}
)";
  auto message = [](const std::string& text) {
    try {
      expand_spec(load_spec_text(text, "s.yaml"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // A swept key that a method entry also sets: ambiguous.
  EXPECT_EQ(message(base + "sweep: {train.lr: [1.0e-3, 1.0e-4]}\n"),
            "s.yaml:5: train.lr is set by this method entry and swept by sweep: train.lr; keep one");
  // Not a mapping.
  std::string scalar = base;
  scalar.replace(scalar.find("{lr: 1.0e-3}"), 12, "0.1");
  EXPECT_EQ(message(scalar), "s.yaml:5: a method's train: is a mapping of train settings, e.g. {lr: 3.0e-4}");
  // An unknown train key is reported like one in the train section.
  std::string unknown = base;
  unknown.replace(unknown.find("lr: 1.0e-3"), 10, "lrr: 1.0e-3");
  EXPECT_NE(message(unknown).find("s.yaml:5:"), std::string::npos) << message(unknown);
  EXPECT_NE(message(unknown).find("lrr"), std::string::npos) << message(unknown);
}

// An entry's key set to null is not set (the smoke profile nulls entries' schedule keys so that its own win):
// the train section's value stays, and the entry's other keys still apply.
TEST(MethodTrain, AnEntrysNullKeyLeavesTheTrainSectionsValue) {
  const std::string text = R"(name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - {name: lora, rank: 8, alpha: 16}
tasks:
  - {name: sst2, train: {batch_size: 8, max_steps: 120, lr: 1.0e-3}}
train: {lr: 2.0e-3, batch_size: 4, max_steps: 10}
)";
  auto runs = expand_spec(load_spec_text(text, "s.yaml", {"train.max_steps=2", "train.batch_size=2",
                                                         "tasks.0.train.max_steps=null",
                                                         "tasks.0.train.batch_size=null"}));
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].train.max_steps, 2);
  EXPECT_EQ(runs[0].train.batch_size, 2);
  EXPECT_DOUBLE_EQ(runs[0].train.lr, 1.0e-3);
}

}  // namespace
}  // namespace peftlab

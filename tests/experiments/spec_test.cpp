#include "experiments/spec.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "core/data_root.h"
#include "experiments/run_checks.h"
#include "experiments/smoke_profile.h"
#include "experiments/sweep.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

// The line where `needle` first occurs in `text`, counted by hand (independently of yaml-cpp's marks).
long line_of(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  return 1 + static_cast<long>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

// The InputError thrown by `body` (fails the test when none is thrown).
template <typename F>
InputError error_of(F&& body) {
  try {
    body();
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "expected an InputError";
  return InputError("", "");
}

const char* const kMinimal = R"(name: t
model: {path: /models/m.bin, tokenizer: /models/tok.model}
methods:
  - name: full
  - {name: lora, rank: 8, alpha: 16}
tasks:
  - name: sst2
)";

// Restores the global hooks a test changes.
struct HooksGuard {
  SpecHooks saved = spec_hooks();
  ~HooksGuard() { spec_hooks() = saved; }
};

TEST(Spec, LoadFromTextNamesTheGivenFile) {
  std::string text = std::string(kMinimal) + "eval: {batch_size: 0}\n";
  InputError e = error_of([&] { load_spec_text(text, "fuzz-input"); });
  EXPECT_EQ(std::string(e.what()),
            fmt::format("fuzz-input:{}: eval.batch_size: must be at least 1, got 0", line_of(text, "eval:")));
  EXPECT_EQ(load_spec_text(kMinimal, "x.yaml").methods.size(), 2u);
}

TEST(Spec, MinimalSpecHasDocumentedDefaults) {
  TempDir dir;
  write_file(dir / "s.yaml", kMinimal);
  std::vector<RunSpec> runs = load_runs(dir / "s.yaml");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, "sst2/full/seed0");
  EXPECT_EQ(runs[1].id, "sst2/lora-r8/seed0");
  EXPECT_EQ(runs[1].dir, "runs/t/sst2/lora-r8/seed0");
  TrainConfig defaults;  // the struct's own initialisers are the documented defaults
  EXPECT_EQ(runs[0].train.lr, defaults.lr);
  EXPECT_EQ(runs[0].train.batch_size, 8);
  EXPECT_EQ(runs[0].train.no_decay, (std::vector<std::string>{"norm", "bias", "magnitude"}));
  EXPECT_EQ(runs[0].eval.batch_size, 32);
  EXPECT_EQ(runs[0].record.log_every, 10);
  EXPECT_EQ(runs[0].model.tokenizer, "/models/tok.model");
  EXPECT_EQ(runs[1].method["rank"].as<int>(), 8);
  EXPECT_EQ(runs[1].method_name, "lora");
}

TEST(Spec, IncludeMergesDeeplyAndTheIncludingFileWins) {
  TempDir dir;
  fs::create_directories(dir / "shared");
  write_file(dir / "shared" / "base.yaml", "include: more.yaml\ntrain: {lr: 0.1, batch_size: 4, no_decay: [a, b]}\n");
  // Included by base.yaml, so relative to shared/; base.yaml overrides it.
  write_file(dir / "shared" / "more.yaml", "train: {lr: 0.7, grad_accum: 3}\neval: {batch_size: 5}\n");
  write_file(dir / "other.yaml", "eval: {batch_size: 6, max_examples: 9}\n");
  fs::create_directories(dir / "specs");
  write_file(dir / "specs" / "s.yaml", std::string("include: [../shared/base.yaml, ../other.yaml]\n") + kMinimal +
                                           "train: {lr: 0.5, no_decay: [c]}\n");
  RunSpec run = load_runs(dir / "specs" / "s.yaml").front();
  EXPECT_DOUBLE_EQ(run.train.lr, 0.5);                           // spec over base over more
  EXPECT_EQ(run.train.batch_size, 4);                            // from base
  EXPECT_EQ(run.train.grad_accum, 3);                            // from more, two levels down
  EXPECT_EQ(run.train.no_decay, std::vector<std::string>{"c"});  // lists replace
  EXPECT_EQ(run.eval.batch_size, 6);                             // the later include wins over the earlier
  EXPECT_EQ(run.eval.max_examples, 9);
}

TEST(Spec, IncludeCycleIsAnErrorAtTheIncludeLine) {
  TempDir dir;
  std::string b = "# b\ninclude: a.yaml\n";
  write_file(dir / "a.yaml", std::string("include: b.yaml\n") + kMinimal);
  write_file(dir / "b.yaml", b);
  InputError e = error_of([&] { load_spec(dir / "a.yaml"); });
  EXPECT_EQ(e.file(), (dir / "b.yaml").string());
  EXPECT_EQ(e.line(), line_of(b, "a.yaml"));
  EXPECT_EQ(e.problem(), "include cycle: a.yaml -> b.yaml -> a.yaml");
}

TEST(Spec, MissingIncludeNamesItsLine) {
  TempDir dir;
  std::string text = std::string(kMinimal) + "include: [nothere.yaml]\n";
  write_file(dir / "s.yaml", text);
  InputError e = error_of([&] { load_spec(dir / "s.yaml"); });
  EXPECT_EQ(e.line(), line_of(text, "nothere"));
  EXPECT_NE(e.problem().find("does not exist"), std::string::npos);
}

TEST(Spec, DataAndEnvironmentVariablesExpand) {
  TempDir dir;
  ::setenv("PEFTLAB_SPEC_TEST_TOK", "/tok/t.model", 1);
  write_file(dir / "s.yaml", std::string(kMinimal) + "output: {dir: \"${data}/out\"}\n");
  Spec spec =
      load_spec(dir / "s.yaml", {"model.path=${data}/models/x.bin", "model.tokenizer=${env:PEFTLAB_SPEC_TEST_TOK}"});
  RunSpec run = expand_spec(spec).front();
  EXPECT_EQ(run.model.path, data_root().string() + "/models/x.bin");
  EXPECT_EQ(run.model.tokenizer, "/tok/t.model");
  EXPECT_EQ(spec.output_dir, data_root().string() + "/out");

  std::string text = std::string(kMinimal) + "description: \"${env:PEFTLAB_SPEC_TEST_UNSET_VARIABLE}\"\n";
  ::unsetenv("PEFTLAB_SPEC_TEST_UNSET_VARIABLE");
  write_file(dir / "u.yaml", text);
  InputError e = error_of([&] { load_spec(dir / "u.yaml"); });
  EXPECT_EQ(e.line(), line_of(text, "description"));
  EXPECT_NE(e.problem().find("'PEFTLAB_SPEC_TEST_UNSET_VARIABLE' is not set"), std::string::npos);
  write_file(dir / "v.yaml", std::string(kMinimal) + "description: ${date}\n");
  EXPECT_NE(error_of([&] { load_spec(dir / "v.yaml"); }).problem().find("unknown variable '${date}'"),
            std::string::npos);
}

TEST(Spec, SetOverridesValuesListsAndEntries) {
  TempDir dir;
  write_file(dir / "s.yaml", kMinimal);
  std::vector<RunSpec> runs = load_runs(dir / "s.yaml", {"train.lr=0.25", "seeds=[3, 4]", "methods.lora.rank=4",
                                                         "eval.splits=[dev, test]", "sweep.train.batch_size=[2, 4]"});
  ASSERT_EQ(runs.size(), 2u * 2u * 2u);  // 2 methods x 2 batch sizes x 2 seeds
  EXPECT_EQ(runs[0].id, "sst2/full/batch_size=2/seed3");
  EXPECT_DOUBLE_EQ(runs[0].train.lr, 0.25);
  EXPECT_EQ(runs[0].eval.splits, (std::vector<std::string>{"dev", "test"}));
  EXPECT_EQ(runs.back().id, "sst2/lora-r4/batch_size=4/seed4");
  EXPECT_EQ(runs.back().method["rank"].as<int>(), 4);
  EXPECT_EQ(runs.back().train.batch_size, 4);
  // By index too; a key that the spec did not write is added.
  RunSpec run = load_runs(dir / "s.yaml", {"methods.1.dropout=0.1"}).back();
  EXPECT_DOUBLE_EQ(run.method["dropout"].as<double>(), 0.1);
}

TEST(Spec, SetUnknownKeyIsAnErrorWithSuggestion) {
  TempDir dir;
  write_file(dir / "s.yaml", kMinimal);
  InputError e = error_of([&] { load_spec(dir / "s.yaml", {"train.lrr=0.1"}); });
  EXPECT_EQ(std::string(e.what()), "--set train.lrr=0.1: unknown key 'train.lrr' (did you mean 'lr'?)");
  e = error_of([&] { load_spec(dir / "s.yaml", {"trian.lr=0.1"}); });
  EXPECT_EQ(std::string(e.what()), "--set trian.lr=0.1: unknown key 'trian' (did you mean 'train'?)");
  e = error_of([&] { load_spec(dir / "s.yaml", {"methods.lorra.rank=4"}); });
  EXPECT_NE(e.problem().find("did you mean 'lora'"), std::string::npos);
  e = error_of([&] { load_spec(dir / "s.yaml", {"train.lr"}); });
  EXPECT_EQ(e.problem(), "expected key=value");
  e = error_of([&] { load_spec(dir / "s.yaml", {"train.lr=fast"}); });
  EXPECT_EQ(e.file(), "--set train.lr=fast");
  EXPECT_NE(e.problem().find("expected a number"), std::string::npos);
}

TEST(Spec, UnknownKeyNamesFileLineAndClosestKey) {
  TempDir dir;
  std::string text = std::string(kMinimal) + "train:\n  lr: 0.1\n  warmup_step: 10\n";
  write_file(dir / "s.yaml", text);
  InputError e = error_of([&] { load_spec(dir / "s.yaml"); });
  EXPECT_EQ(e.file(), (dir / "s.yaml").string());
  EXPECT_EQ(e.line(), line_of(text, "warmup_step"));
  EXPECT_EQ(e.problem(), "unknown key 'train.warmup_step' (did you mean 'warmup_steps'?)");
  std::string top = std::string(kMinimal) + "seed: [1]\n";
  write_file(dir / "t.yaml", top);
  e = error_of([&] { load_spec(dir / "t.yaml"); });
  EXPECT_EQ(e.line(), line_of(top, "seed:"));
  EXPECT_EQ(e.problem(), "unknown key 'seed' (did you mean 'seeds'?)");
}

TEST(Spec, UnknownKeyAndWrongTypeInsideAnIncludedFileNameThatFile) {
  TempDir dir;
  // The spec is longer than the included file, so a line counted in the wrong file would not match.
  std::string base = "# shared\nrecord:\n  log_evry: 5\n";
  write_file(dir / "base.yaml", base);
  write_file(dir / "s.yaml", std::string("include: base.yaml\n") + kMinimal + "\n\n\n\n# padding\n");
  InputError e = error_of([&] { load_spec(dir / "s.yaml"); });
  EXPECT_EQ(e.file(), (dir / "base.yaml").string());
  EXPECT_EQ(e.line(), line_of(base, "log_evry"));
  EXPECT_EQ(e.problem(), "unknown key 'record.log_evry' (did you mean 'log_every'?)");

  std::string typed = "\n\ntrain:\n  batch_size: sixteen\n";
  write_file(dir / "base.yaml", typed);
  e = error_of([&] { load_spec(dir / "s.yaml"); });
  EXPECT_EQ(e.file(), (dir / "base.yaml").string());
  EXPECT_EQ(e.line(), line_of(typed, "sixteen"));
  EXPECT_EQ(e.problem(), "train.batch_size: expected an integer, got 'sixteen'");
}

TEST(Spec, WrongTypeAndBadValuesNameTheirLine) {
  TempDir dir;
  struct Case {
    std::string yaml, needle, message_part;
  };
  std::vector<Case> cases = {
      {"train: {lr: 0.1, select_best: maybe}\n", "maybe", "expected true or false"},
      {"train:\n  lr: -1\n", "-1", "must be a positive number"},
      {"train:\n  schedule: cosin\n", "cosin", "expected one of constant | linear | cosine"},
      {"train:\n  betas: [0.9]\n", "[0.9]", "two numbers"},
      {"train:\n  max_steps: 10\n  epochs: 2\n", "epochs", "at most one of max_steps and epochs"},
      {"seeds: [1, one]\n", "one", "expected an integer"},
      {"seeds: [1, 1]\n", "1]", "listed twice"},
      {"eval:\n  splits: dev\n", "dev", "expected a list of strings"},
      {"model: {path: /m.bin, init: {dim: 8, n_layers: 1, n_heads: 2, vocab_size: 10}, tokenizer: /t}\n",
       "model:", "exactly one of 'path'"},
      {"model: {path: /m.bin, device: gpu}\n", "gpu", "expected cpu, cuda or cuda:N"},
  };
  for (const auto& c : cases) {
    // The case's section comes last and overrides kMinimal's (a duplicate top-level key would be an error,
    // so kMinimal's model line is dropped when the case sets the model).
    std::string base = kMinimal;
    if (c.yaml.rfind("model:", 0) == 0)
      base.erase(base.find("model:"), base.find('\n', base.find("model:")) + 1 - base.find("model:"));
    std::string text = base + c.yaml;
    write_file(dir / "s.yaml", text);
    InputError e = error_of([&] { load_runs(dir / "s.yaml"); });
    EXPECT_EQ(e.line(), line_of(text.substr(base.size()), c.needle) + line_of(text, c.yaml) - 1) << c.yaml;
    EXPECT_NE(e.problem().find(c.message_part), std::string::npos) << c.yaml << " -> " << e.what();
  }
}

TEST(Spec, DuplicateKeysAreErrorsSweepKeysIncluded) {
  TempDir dir;
  std::string text = std::string(kMinimal) + "sweep:\n  train.lr: [0.1, 0.01]\n  train.lr: [0.5]\n";
  write_file(dir / "s.yaml", text);
  InputError e = error_of([&] { load_spec(dir / "s.yaml"); });
  long first = line_of(text, "train.lr");
  long second = line_of(text, "train.lr: [0.5]");
  EXPECT_EQ(e.line(), second);
  EXPECT_EQ(e.problem(), fmt::format("duplicate key 'sweep.train.lr' (first written at line {})", first));

  std::string dup_value = std::string(kMinimal) + "sweep:\n  train.lr: [0.1, 0.1]\n";
  write_file(dir / "v.yaml", dup_value);
  EXPECT_NE(error_of([&] { load_spec(dir / "v.yaml"); }).problem().find("listed twice"), std::string::npos);
}

TEST(Spec, BadSweepKeysNameTheirLine) {
  TempDir dir;
  std::string text = std::string(kMinimal) + "sweep:\n  train.lrr: [0.1, 0.01]\n";
  write_file(dir / "s.yaml", text);
  InputError e = error_of([&] { load_runs(dir / "s.yaml"); });
  EXPECT_EQ(e.line(), line_of(text, "train.lrr"));
  EXPECT_EQ(e.problem(), "unknown key 'train.lrr' (did you mean 'lr'?)");
  std::string section = std::string(kMinimal) + "sweep:\n  trian.lr: [0.1]\n";
  write_file(dir / "t.yaml", section);
  e = error_of([&] { load_spec(dir / "t.yaml"); });
  EXPECT_EQ(e.line(), line_of(section, "trian"));
  EXPECT_NE(e.problem().find("did you mean 'train'"), std::string::npos);
  std::string wrong_type = std::string(kMinimal) + "sweep:\n  train.batch_size:\n    - 8\n    - big\n";
  write_file(dir / "w.yaml", wrong_type);
  e = error_of([&] { load_runs(dir / "w.yaml"); });
  EXPECT_EQ(e.line(), line_of(wrong_type, "big"));
}

TEST(Sweep, ExpansionCountsIdsAndOrder) {
  TempDir dir;
  write_file(dir / "s.yaml", R"(name: grid
model: {path: /m.bin}
methods:
  - name: full
  - {name: lora, rank: 8}
tasks: [{name: sst2}, {name: rte}]
seeds: [0, 1]
sweep:
  train.lr: [1e-3, 1e-4]
  method.rank: [4, 16]
)");
  std::vector<RunSpec> runs = load_runs(dir / "s.yaml");
  // full is not multiplied by method.rank: (1 + 2) method variants x 2 tasks x 2 lr x 2 seeds.
  ASSERT_EQ(runs.size(), 3u * 2u * 2u * 2u);
  std::vector<std::string> first_ids;
  for (size_t i = 0; i < 6; ++i) first_ids.push_back(runs[i].id);
  EXPECT_EQ(first_ids, (std::vector<std::string>{"sst2/full/lr=1e-3/seed0", "sst2/full/lr=1e-3/seed1",
                                                 "sst2/full/lr=1e-4/seed0", "sst2/full/lr=1e-4/seed1",
                                                 "sst2/lora-r4/lr=1e-3/seed0", "sst2/lora-r4/lr=1e-3/seed1"}));
  EXPECT_EQ(runs[12].id, "rte/full/lr=1e-3/seed0");
  EXPECT_EQ(runs[11].id, "sst2/lora-r16/lr=1e-4/seed1");
  EXPECT_EQ(runs[11].method["rank"].as<int>(), 16);
  EXPECT_DOUBLE_EQ(runs[11].train.lr, 1e-4);
  EXPECT_EQ(runs[11].seed, 1);
  EXPECT_EQ(runs[11].sweep_values,
            (std::vector<std::pair<std::string, std::string>>{{"method.rank", "16"}, {"train.lr", "1e-4"}}));
  std::set<std::string> unique;
  for (const auto& r : runs) unique.insert(r.id);
  EXPECT_EQ(unique.size(), runs.size());

  // The resolved YAML of one run reads back to the same values.
  YAML::Node resolved = YAML::Load(runs[11].resolved_yaml);
  EXPECT_EQ(resolved["id"].as<std::string>(), runs[11].id);
  EXPECT_EQ(resolved["method"]["rank"].as<int>(), 16);
  EXPECT_DOUBLE_EQ(resolved["train"]["lr"].as<double>(), 1e-4);
  EXPECT_EQ(resolved["seed"].as<int>(), 1);
  EXPECT_EQ(resolved["model"]["tokenizer"].as<std::string>(), "/tokenizer.model");
}

TEST(Sweep, MethodAxisThatAppliesToNoMethodIsAnError) {
  TempDir dir;
  std::string text =
      "model: {path: /m.bin}\nmethods: [{name: full}]\ntasks: [{name: sst2}]\nsweep:\n  method.rank: [4, 8]\n";
  write_file(dir / "s.yaml", text);
  InputError e = error_of([&] { load_runs(dir / "s.yaml"); });
  EXPECT_EQ(e.line(), line_of(text, "method.rank"));
  EXPECT_EQ(e.problem(), "sweep: 'method.rank' applies to none of the methods");
}

TEST(Sweep, OrderIsDeterministic) {
  TempDir dir;
  write_file(dir / "s.yaml", std::string(kMinimal) +
                                 "seeds: [2, 0, 1]\nsweep:\n  eval.batch_size: [8, 4]\n  train.batch_size: [1, 2]\n");
  std::vector<RunSpec> a = load_runs(dir / "s.yaml"), b = load_runs(dir / "s.yaml");
  ASSERT_EQ(a.size(), 2u * 2u * 2u * 3u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].resolved_yaml, b[i].resolved_yaml);
  }
  // Seeds and values in the order written; axes sharing a last segment use their full key.
  EXPECT_EQ(a[0].id, "sst2/full/eval.batch_size=8,train.batch_size=1/seed2");
  EXPECT_EQ(a[1].id, "sst2/full/eval.batch_size=8,train.batch_size=1/seed0");
  EXPECT_EQ(a[3].id, "sst2/full/eval.batch_size=8,train.batch_size=2/seed2");
}

TEST(Sweep, LabelsDistinguishEntriesThatShareAName) {
  TempDir dir;
  std::string text = R"(model: {path: /m.bin}
methods:
  - {name: lora, rank: 8, alpha: 16}
  - {name: lora, rank: 8, alpha: 32}
  - {name: bora, rank: 8, order: in_first, rslora: true}
  - {name: dora, rank: 8, label: my-dora}
tasks:
  - {name: commonsense, protocol: generate}
  - {name: commonsense, protocol: loglik}
)";
  write_file(dir / "s.yaml", text);
  std::vector<RunSpec> runs = load_runs(dir / "s.yaml");
  std::vector<std::string> ids;
  for (const auto& r : runs) ids.push_back(r.id);
  EXPECT_EQ(
      ids,
      (std::vector<std::string>{
          "commonsense-protocol=generate/lora-r8-alpha=16/seed0",
          "commonsense-protocol=generate/lora-r8-alpha=32/seed0",
          "commonsense-protocol=generate/bora-r8-rslora-in_first/seed0", "commonsense-protocol=generate/my-dora/seed0",
          "commonsense-protocol=loglik/lora-r8-alpha=16/seed0", "commonsense-protocol=loglik/lora-r8-alpha=32/seed0",
          "commonsense-protocol=loglik/bora-r8-rslora-in_first/seed0", "commonsense-protocol=loglik/my-dora/seed0"}));
  EXPECT_FALSE(runs[3].method["label"]) << "label is the spec's, not the method's";

  std::string same = std::string(kMinimal) + "  - name: sst2\n";
  write_file(dir / "same.yaml", same);
  InputError e = error_of([&] { load_runs(dir / "same.yaml"); });
  EXPECT_EQ(e.line(), line_of(same, "  - name: sst2\n  - name: sst2") + 1);
  EXPECT_NE(e.problem().find("same runs as the one at line " + std::to_string(line_of(same, "- name: sst2"))),
            std::string::npos);
}

TEST(Sweep, UnknownMethodNameSuggests) {
  TempDir dir;
  std::string text = "model: {path: /m.bin}\nmethods: [{name: lorra}]\ntasks: [{name: sst2}]\n";
  write_file(dir / "s.yaml", text);
  InputError e = error_of([&] { load_spec(dir / "s.yaml"); });
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.problem(),
            "methods[0].name: unknown method 'lorra' (known: bora, dora, full, lora, pissa, vera; did you mean 'lora'?)");
}

TEST(Sweep, SectionValidatorsSeeEveryResolvedEntryAndLeftoverKeysAreErrors) {
  HooksGuard guard;
  std::vector<int> ranks;
  register_section_validator("method", [&](Options& o) {
    ranks.push_back(o.get<int>("rank", 0));
    o.get<double>("alpha", 1.0);
  });
  TempDir dir;
  write_file(dir / "s.yaml", std::string(kMinimal) + "sweep:\n  method.rank: [2, 3]\n");
  load_runs(dir / "s.yaml");
  EXPECT_EQ(ranks, (std::vector<int>{0, 2, 3}));  // full (no rank), lora with each swept rank

  const std::string head = "model: {path: /m.bin}\ntasks: [{name: sst2}]\nmethods:\n  - name: full\n";
  std::string text = head + "  - {name: dora, rank: 4, alpah: 8}\n";
  write_file(dir / "t.yaml", text);
  InputError e = error_of([&] { load_runs(dir / "t.yaml"); });
  EXPECT_EQ(e.line(), line_of(text, "alpah"));
  EXPECT_EQ(e.problem(), "unknown key 'method.alpah' (did you mean 'alpha'?)");
  std::string typed = head + "  - name: dora\n    rank: four\n";
  write_file(dir / "u.yaml", typed);
  e = error_of([&] { load_runs(dir / "u.yaml"); });
  EXPECT_EQ(e.line(), line_of(typed, "four"));
}

TEST(Spec, ModelInitDefaultsAndTokenizerDefaults) {
  TempDir dir;
  // The 15M/42M/110M shapes of the performance issue list hidden 768, 1376 and 2048 for dims 288, 512, 768.
  for (auto [dim, hidden] : std::vector<std::pair<int, int>>{{288, 768}, {512, 1376}, {768, 2048}}) {
    std::string text = fmt::format(
        "model: {{init: {{dim: {}, n_layers: 2, n_heads: 8, vocab_size: 32000}}, tokenizer: /t.model}}\n"
        "methods: [{{name: full}}]\ntasks: [{{name: sst2}}]\n",
        dim);
    write_file(dir / "s.yaml", text);
    RunSpec run = load_runs(dir / "s.yaml").front();
    ASSERT_TRUE(run.model.init.has_value());
    EXPECT_EQ(run.model.init->hidden_dim, hidden) << dim;
    EXPECT_EQ(run.model.init->n_kv_heads, 8);
  }
  write_file(dir / "f.yaml", "model: {path: /models/llama-7b}\nmethods: [{name: full}]\ntasks: [{name: sst2}]\n");
  EXPECT_EQ(load_runs(dir / "f.yaml").front().model.tokenizer, "/models/llama-7b");
  write_file(dir / "n.yaml",
             "model: {init: {dim: 8, n_layers: 1, n_heads: 2, vocab_size: 9}}\nmethods: [{name: full}]\ntasks: [{name: "
             "sst2}]\n");
  EXPECT_NE(error_of([&] { load_runs(dir / "n.yaml"); }).problem().find("tokenizer is required"), std::string::npos);
}

TEST(Sweep, ShardsCoverEveryRunExactlyOnce) {
  TempDir dir;
  write_file(dir / "s.yaml", std::string(kMinimal) + "seeds: [0, 1, 2, 3, 4, 5, 6]\n");
  std::vector<RunSpec> runs = load_runs(dir / "s.yaml");
  ASSERT_EQ(runs.size(), 14u);
  for (int64_t n = 1; n <= 5; ++n) {
    std::map<std::string, int> seen;
    size_t smallest = runs.size(), largest = 0;
    for (int64_t i = 0; i < n; ++i) {
      auto shard = select_shard(runs, i, n);
      smallest = std::min(smallest, shard.size()), largest = std::max(largest, shard.size());
      for (const auto& r : shard) seen[r.id]++;
    }
    EXPECT_EQ(seen.size(), runs.size()) << n;
    for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id;
    EXPECT_LE(largest - smallest, 1u) << n;
  }
  EXPECT_EQ(select_shard(runs, 1, 4)[1].id, runs[5].id);  // round-robin: runs 1, 5, 9, 13
  Shard shard = parse_shard("3/8");
  EXPECT_EQ(shard.index, 3);
  EXPECT_EQ(shard.count, 8);
  for (const char* bad : {"8/8", "1/0", "-1/2", "a/b", "1", "1/2/3", ""})
    EXPECT_THROW(parse_shard(bad), InputError) << bad;
}

TEST(ValidateCli, ExitCodesAndOutput) {
  TempDir dir;
  // validate reads the model's config: the real stories260K.
  std::string minimal = kMinimal;
  minimal.replace(minimal.find("/models/m.bin"), 13, testing::stories260k_bin().string());
  minimal.replace(minimal.find("/models/tok.model"), 17, testing::stories260k_tokenizer().string());
  write_file(dir / "s.yaml", minimal);
  auto ok = testing::run_cli({"validate", (dir / "s.yaml").string(), "--set", "seeds=[0, 1]"});
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find(": 4 runs\n  sst2/full/seed0\n  sst2/full/seed1\n  sst2/lora-r8/seed0\n"), std::string::npos)
      << ok.output;
  auto shard = testing::run_cli({"validate", (dir / "s.yaml").string(), "--shard", "1/2"});
  EXPECT_EQ(shard.status, 0) << shard.output;
  EXPECT_NE(shard.output.find("(shard 1/2: 1 of 2)\n  sst2/lora-r8/seed0"), std::string::npos) << shard.output;

  std::string bad = minimal + "train:\n  lr: 0.1\n  bacth_size: 4\n";
  write_file(dir / "bad.yaml", bad);
  auto failed = testing::run_cli({"validate", (dir / "bad.yaml").string()});
  EXPECT_EQ(failed.status, 2);
  EXPECT_EQ(failed.output, fmt::format("error: {}:{}: unknown key 'train.bacth_size' (did you mean 'batch_size'?)\n",
                                       (dir / "bad.yaml").string(), line_of(bad, "bacth")));
  auto set = testing::run_cli({"validate", (dir / "s.yaml").string(), "--set", "train.lrr=1"});
  EXPECT_EQ(set.status, 2);
  EXPECT_EQ(set.output, "error: --set train.lrr=1: unknown key 'train.lrr' (did you mean 'lr'?)\n");
  auto missing = testing::run_cli({"validate", (dir / "none.yaml").string()});
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.output, fmt::format("error: {}: cannot read the spec file\n", (dir / "none.yaml").string()));
}

TEST(Experiments, EveryBundledSpecValidates) {
  // What `peftlab validate` checks: the spec read through the method and task registries (every option key of
  // every entry), then each run's model config, device, sequence length and method plan (check_runs).
  ASSERT_FALSE(spec_hooks().method_names.empty());
  ASSERT_TRUE(spec_hooks().validators.count("method") && spec_hooks().validators.count("task"));
  fs::path root = fs::path(PEFTLAB_SOURCE_DIR) / "experiments";
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".yaml" || entry.path().filename() == "defaults.yaml")
      continue;  // defaults: an include
    EXPECT_NO_THROW({
      try {
        // Paper specs name placeholder model folders: validate them as `validate --smoke` does.
        auto runs = load_runs(entry.path(), smoke_overrides(entry.path()));
        EXPECT_FALSE(runs.empty());
        check_runs(runs);
      } catch (const InputError& e) {
        ADD_FAILURE() << e.what();
        throw;
      }
    }) << entry.path();
    ++checked;
  }
  EXPECT_GE(checked, 6);
  // The same path rejects what the registries reject: an option no method has, a task option no task has.
  TempDir dir;
  const std::string head = "model: {path: /m.bin}\n";
  write_file(dir / "m.yaml", head + "methods: [{name: lora, rnak: 4}]\ntasks: [{name: sst2}]\n");
  EXPECT_THROW(load_runs(dir / "m.yaml"), InputError);
  write_file(dir / "t.yaml", head + "methods: [{name: lora}]\ntasks: [{name: sst2, splitt: dev}]\n");
  EXPECT_THROW(load_runs(dir / "t.yaml"), InputError);
}

TEST(Experiments, QuickstartAndPaperSpecsSayWhatTheDocsSay) {
  fs::path root = fs::path(PEFTLAB_SOURCE_DIR) / "experiments";
  std::vector<RunSpec> quick = load_runs(root / "quickstart.yaml");
  std::vector<std::string> ids;
  for (const auto& r : quick) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"sst2/full/seed0", "sst2/lora-r8/seed0", "sst2/dora-r8/seed0",
                                           "sst2/bora-r8/seed0"}));
  EXPECT_EQ(quick[0].model.path, (data_root() / "models/stories260K/stories260K.bin").string());
  EXPECT_TRUE(fs::is_regular_file(quick[0].model.path));
  EXPECT_TRUE(fs::is_regular_file(quick[0].model.tokenizer));
  EXPECT_LE(quick[0].train.max_steps, 500);

  struct Paper {
    const char* file;
    int rank, alpha;
    double lr;
  };
  for (const Paper& p : {Paper{"paper/dora_llama7b_commonsense_r32.yaml", 32, 64, 1e-4},
                         Paper{"paper/dora_llama7b_commonsense_r16.yaml", 16, 32, 2e-4}}) {
    std::vector<RunSpec> runs = load_runs(root / p.file, {"model.path=/weights/llama-7b"});
    ASSERT_GE(runs.size(), 2u) << p.file;
    for (const auto& r : runs) {
      EXPECT_EQ(r.method["rank"].as<int>(), p.rank);
      EXPECT_EQ(r.method["alpha"].as<int>(), p.alpha);
      EXPECT_DOUBLE_EQ(r.method["dropout"].as<double>(), 0.05);
      EXPECT_EQ(r.method["targets"].as<std::vector<std::string>>(),
                (std::vector<std::string>{"q_proj", "k_proj", "v_proj", "up_proj", "down_proj"}));
      EXPECT_DOUBLE_EQ(r.train.lr, r.method_name == "lora" ? 3e-4 : p.lr);  // LoRA at its own rate
      EXPECT_EQ(r.train.batch_size * r.train.grad_accum, 16);
      EXPECT_EQ(r.train.epochs, 3);
      EXPECT_EQ(r.train.max_steps, 0);
      EXPECT_EQ(r.train.warmup_steps, 100);
      EXPECT_EQ(r.model.path, "/weights/llama-7b");
      EXPECT_EQ(r.model.tokenizer, "/weights/llama-7b");
    }
    EXPECT_EQ(runs[0].method_name, "lora");
    EXPECT_EQ(runs[1].method_name, "dora");
  }
}

}  // namespace
}  // namespace peftlab

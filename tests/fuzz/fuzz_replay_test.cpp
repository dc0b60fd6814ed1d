// Replays every seed (fuzz/corpus/<target>/) and every input that once crashed a fuzz target
// (fuzz/regressions/<target>/) through the same body the libFuzzer target runs (fuzz/targets.h), in the normal
// build: each must come back normally, accepted or refused with an InputError. The known crashes are also
// checked one by one for the InputError that now refuses them. See docs/fuzzing.md.
#define PEFTLAB_FUZZ_ALL_BODIES
#include "fuzz/targets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using fuzz::Outcome;

using Body = Outcome (*)(const std::uint8_t*, std::size_t);

struct Target {
  const char* name;
  Body body;
};

const Target kTargets[] = {
    {"fuzz_llama2c", fuzz::llama2c_body}, {"fuzz_spec", fuzz::spec_body}, {"fuzz_tsv", fuzz::tsv_body},
    {"fuzz_csv", fuzz::csv_body},         {"fuzz_json", fuzz::json_body}, {"fuzz_jsonl", fuzz::jsonl_body},
    {"fuzz_run_file", fuzz::run_file_body},
    {"fuzz_tokenizer_json", fuzz::tokenizer_json_body},
};

const fs::path kFuzzDir = fs::path(PEFTLAB_SOURCE_DIR) / "fuzz";

std::string bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Outcome run(Body body, const std::string& bytes) {
  return body(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

// The files of `folder`, sorted (none when it does not exist).
std::vector<fs::path> files_in(const fs::path& folder) {
  std::vector<fs::path> files;
  if (fs::is_directory(folder))
    for (const auto& entry : fs::directory_iterator(folder))
      if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Replays the files and returns (inputs replayed, inputs accepted at least once).
std::pair<int, int> replay(const Target& target, const fs::path& folder) {
  int replayed = 0, accepted = 0;
  for (const auto& file : files_in(folder)) {
    SCOPED_TRACE(file.string());
    try {
      Outcome outcome = run(target.body, bytes_of(file));
      ++replayed;
      if (outcome.accepted > 0) ++accepted;
    } catch (const std::exception& e) {
      ADD_FAILURE() << target.name << " on " << file << ": " << e.what();
    }
  }
  return {replayed, accepted};
}

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedsAreReadAndKeepTheInvariants) {
  auto [replayed, accepted] = replay(GetParam(), kFuzzDir / "corpus" / GetParam().name);
  EXPECT_GT(replayed, 0) << "no seeds in fuzz/corpus/" << GetParam().name;
  EXPECT_GT(accepted, 0) << "no seed of " << GetParam().name << " is accepted: the seeds test only refusals";
}

TEST_P(FuzzReplay, RegressionsComeBackNormally) {
  replay(GetParam(), kFuzzDir / "regressions" / GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(kTargets),
                         [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

// The InputError messages a regression input now gets (it must be refused, in every reading).
std::vector<std::string> refusals(const char* target, const std::string& file) {
  const fs::path path = kFuzzDir / "regressions" / target / file;
  EXPECT_TRUE(fs::is_regular_file(path)) << path;
  for (const Target& t : kTargets)
    if (std::string(t.name) == target) {
      Outcome outcome = run(t.body, bytes_of(path));
      EXPECT_EQ(outcome.accepted, 0) << path;
      EXPECT_FALSE(outcome.errors.empty()) << path;
      return outcome.errors;
    }
  ADD_FAILURE() << "no target " << target;
  return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The one refusal of a regression input read once (JSON, spec) or the same refusal in every reading (tables).
std::string refusal(const char* target, const std::string& file) {
  std::vector<std::string> errors = refusals(target, file);
  return errors.empty() ? std::string() : errors.front();
}

// ---- One test per crash found (docs/fuzzing.md lists them). ----

// A header whose shape needs more than 2^63 weights: the size computation overflowed int64 (UBSan report).
TEST(FuzzRegressions, Llama2cShapeOverflowIsAnInputError) {
  EXPECT_PRED2(contains, refusal("fuzz_llama2c", "shape_overflow.bin"),
               "input.bin: not a llama2.c checkpoint: the header's shape (dim 16777216, hidden_dim 16777216, "
               "n_layers 16777216, vocab_size 1) needs more than 2^60 weights");
  EXPECT_PRED2(contains, refusal("fuzz_llama2c", "crash-shape-overflow-fuzzed.bin"),
               "input.bin: not a llama2.c checkpoint: the header's shape (dim 16777216, hidden_dim 255, "
               "n_layers 721158, vocab_size 1280) needs more than 2^60 weights");
}

// nlohmann::json throws out_of_range (not parse_error) for a number beyond double; it escaped both readers.
TEST(FuzzRegressions, JsonNumberOverflowIsAnInputErrorAtItsLine) {
  // The first "1e400" is inside a string; the line is the one of the number itself.
  EXPECT_PRED2(contains, refusal("fuzz_json", "number_overflow.json"),
               "input.json:3: invalid JSON: number overflow parsing '1e400'");
  EXPECT_PRED2(contains, refusal("fuzz_json", "crash-number-overflow-fuzzed.json"),
               "input.json:1: invalid JSON: number overflow parsing '7777777777777777777777777777771e400777777'");
  EXPECT_PRED2(contains, refusal("fuzz_jsonl", "number_overflow.jsonl"),
               "input.jsonl:2: invalid JSON: number overflow parsing '-1e400'");
}

// yaml-cpp 0.7's LoadAll never returns on a document that starts with ',' (it allocates until killed).
TEST(FuzzRegressions, SpecStartingWithACommaIsAnInputError) {
  EXPECT_PRED2(contains, refusal("fuzz_spec", "leading_comma.yaml"),
               "spec.yaml:2: cannot parse as YAML: unexpected ',' at column 1");
  EXPECT_PRED2(contains, refusal("fuzz_spec", "timeout-leading-comma-fuzzed.yaml"),
               "spec.yaml:1: cannot parse as YAML: unexpected ',' at column 1");
  EXPECT_PRED2(contains, refusal("fuzz_spec", "comma_second_document.yaml"),
               "spec.yaml:3: a spec file holds one YAML document, found several");
}

// An empty sweep key: split("") gave no parts and read_sweep read the first (undefined behaviour).
TEST(FuzzRegressions, EmptySweepKeyIsAnInputError) {
  EXPECT_PRED2(contains, refusal("fuzz_spec", "sweep_empty_key.yaml"),
               "spec.yaml:8: sweep: '' is not a key of a run: unknown section ''");
}

// `--set methods.<huge index>.x=1`: std::stoul threw std::out_of_range.
TEST(FuzzRegressions, HugeOverrideIndexIsAnInputError) {
  EXPECT_EQ(refusal("fuzz_spec", "override_huge_index.yaml"),
            "--set methods.99999999999999999999999.x=1: methods has 1 entries, there is no entry "
            "99999999999999999999999");
}

// to_node(TrainConfig) wrote both alternatives (max_steps: 0 beside epochs, warmup_steps: 0 beside
// warmup_ratio), which read_train refuses: the recorded run spec of such a run did not read back.
TEST(FuzzRegressions, TrainSectionReadsBackAfterToNode) {
  const std::string bytes = bytes_of(kFuzzDir / "regressions" / "fuzz_spec" / "train_round_trip.yaml");
  Outcome outcome = run(fuzz::spec_body, bytes);
  EXPECT_EQ(outcome.accepted, 1);
  EXPECT_TRUE(outcome.errors.empty()) << outcome.errors.front();
  const YAML::Node train = to_node(TrainConfig{});
  EXPECT_TRUE(train["epochs"] && !train["max_steps"] && train["warmup_steps"] && !train["warmup_ratio"]);
}

// Nested aliases (a "billion laughs" spec of 13 lines) made loading take for ever.
TEST(FuzzRegressions, AliasBombIsAnInputError) {
  EXPECT_PRED2(contains, refusal("fuzz_spec", "alias_bomb.yaml"),
               "the spec holds more than 100000 values once its aliases (*name) are expanded (reached at ");
}

}  // namespace
}  // namespace peftlab

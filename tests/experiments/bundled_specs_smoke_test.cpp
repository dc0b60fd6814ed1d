// Every bundled spec runs: experiments/*.yaml and experiments/paper/*.yaml under the smoke profile
// (`peftlab run SPEC --smoke`: the real stories260K in place of the spec's model, two optimizer steps, one
// example per split, every run kind). A spec that names a split its task lacks, a task option its task does
// not know or a method setting that cannot run fails here, not on a user's GPU. The paper specs train on
// LLM-Adapters' commonsense_170k.json, which this data root lacks: the runs see a data root that is the real
// one plus a 160-record file of that name, in the same record layout, cut from two real train sets.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/data_root.h"
#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

const fs::path kExperiments = fs::path(PEFTLAB_SOURCE_DIR) / "experiments";

// Relative to experiments/: every spec file there and in paper/, except the shared defaults (not a spec).
std::vector<std::string> bundled_specs() {
  std::vector<std::string> specs;
  for (const fs::path& dir : {kExperiments, kExperiments / "paper"})
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".yaml" && entry.path().filename() != "defaults.yaml")
        specs.push_back(fs::relative(entry.path(), kExperiments).string());
  std::sort(specs.begin(), specs.end());
  return specs;
}

// The run ids `validate` lists for the spec under the same profile.
std::vector<std::string> listed_runs(const std::string& spec) {
  auto listed = testing::run_cli({"validate", spec, "--smoke"});
  EXPECT_EQ(listed.status, 0) << listed.output;
  std::vector<std::string> ids;
  std::istringstream lines(listed.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("  ", 0) == 0) ids.push_back(line.substr(2));
  return ids;
}

// The real data root seen through symbolic links, with commonsense/commonsense_170k.json (or, with
// `with_mix` false, surely without it); PEFTLAB_DATA points at it while the object lives.
class DataRootWith170k {
 public:
  explicit DataRootWith170k(bool with_mix = true) {
    const fs::path real = data_root();
    const fs::path root = dir_ / "data";
    fs::create_directories(root / "commonsense");
    for (const auto& entry : fs::directory_iterator(real))
      if (entry.path().filename() != "commonsense") fs::create_directory_symlink(entry.path(), root / entry.path().filename());
    for (const auto& entry : fs::directory_iterator(real / "commonsense"))
      if (entry.path().filename() != "commonsense_170k.json")
        fs::create_symlink(entry.path(), root / "commonsense" / entry.path().filename());
    nlohmann::json mix = nlohmann::json::array();
    for (const char* set : {"ARC-Easy", "boolq"}) {
      std::ifstream in(real / "commonsense" / set / "train.json");
      const auto records = nlohmann::json::parse(in);
      for (size_t i = 0; i < 80; ++i) mix.push_back(records.at(i));  // 160: the specs hold out 120
    }
    if (with_mix) testing::write_file(root / "commonsense" / "commonsense_170k.json", mix.dump(2));
    const char* previous = std::getenv("PEFTLAB_DATA");
    if (previous) previous_ = previous;
    had_previous_ = previous != nullptr;
    setenv("PEFTLAB_DATA", root.c_str(), 1);
  }
  ~DataRootWith170k() {
    if (had_previous_) setenv("PEFTLAB_DATA", previous_.c_str(), 1);
    else unsetenv("PEFTLAB_DATA");
  }

 private:
  testing::TempDir dir_;
  std::string previous_;
  bool had_previous_ = false;
};

class BundledSpec : public ::testing::TestWithParam<std::string> {};

TEST_P(BundledSpec, RunsUnderTheSmokeProfile) {
  const std::string spec = (kExperiments / GetParam()).string();
  DataRootWith170k data;
  const auto ids = listed_runs(spec);
  ASSERT_FALSE(ids.empty()) << spec;
  testing::TempDir out;
  auto result = testing::run_cli({"--threads", "1", "-q", "run", spec, "--smoke", "--out", out.path().string()});
  ASSERT_EQ(result.status, 0) << result.output;
  for (const auto& id : ids) {
    const auto status = run_file_status((out.path() / id / "run.h5").string());
    ASSERT_TRUE(status.has_value()) << id << " wrote no run file\n" << result.output;
    EXPECT_EQ(*status, "completed") << id;
  }
  // The table at the end names every method label of the spec's runs.
  for (const auto& id : ids) {
    const std::string method = id.substr(id.find('/') + 1, id.find('/', id.find('/') + 1) - id.find('/') - 1);
    EXPECT_NE(result.output.find("| " + method + " |"), std::string::npos) << method << "\n" << result.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Experiments, BundledSpec, ::testing::ValuesIn(bundled_specs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return std::regex_replace(info.param.substr(0, info.param.size() - 5), std::regex("[^A-Za-z0-9]"), "_");
                         });

// The check above can fail: a paper spec whose evaluation names a split the task does not have ("test", where
// the commonsense task's splits are named after its eight sets) is refused before any run starts.
TEST(BundledSpecSmoke, ABrokenSplitNameFails) {
  testing::TempDir dir;
  fs::create_directories(dir / "paper");
  fs::copy_file(kExperiments / "defaults.yaml", dir / "defaults.yaml");
  std::string text = testing::read_file(kExperiments / "paper" / "dora_llama7b_commonsense_r32.yaml");
  const std::string splits = "splits: [boolq,";
  const size_t at = text.find(splits);
  ASSERT_NE(at, std::string::npos) << "the spec's eval.splits line moved; update this test";
  text.replace(at, text.find(']', at) + 1 - at, "splits: [test]");
  testing::write_file(dir / "paper" / "broken.yaml", text);
  DataRootWith170k data;
  auto result = testing::run_cli({"--threads", "1", "-q", "run", (dir / "paper" / "broken.yaml").string(), "--smoke",
                                  "--out", (dir / "runs").string()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_NE(result.output.find("test"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(dir / "runs" / "commonsense")) << "no run may start";
}

// The paper specs' training file is named in one clear line when the data root lacks it.
TEST(BundledSpecSmoke, AMissingTrainingMixIsNamed) {
  DataRootWith170k data(false);
  testing::TempDir out;
  auto result = testing::run_cli({"--threads", "1", "-q", "run",
                                  (kExperiments / "paper" / "dora_llama7b_commonsense_r32.yaml").string(), "--smoke",
                                  "--only", "commonsense/lora-r32/seed0", "--out", out.path().string()});
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_NE(result.output.find("commonsense/commonsense_170k.json: no such file"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(out / "commonsense/lora-r32/seed0/run.h5")) << "a run that could not start left a run file";
}

}  // namespace
}  // namespace peftlab

// `peftlab table --baseline` on a real three-seed sweep (stories260K on SST-2, two methods): the paired
// differences it prints against numbers computed here directly from the run files, and the per-example
// predictions the run files keep against the final metrics they were scored into.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
  return cells;
}

class PairedTable : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::write_file(*dir_ / "s.yaml", "name: paired\n"
                        "model: {path: " + testing::stories260k_bin().string() + ", tokenizer: " +
                        testing::stories260k_tokenizer().string() + "}\n" + R"(methods:
  - {name: lora, label: base, rank: 4, alpha: 8, targets: [q_proj, v_proj]}
  - {name: dora, label: cand, rank: 4, alpha: 8, targets: [q_proj, v_proj]}
tasks:
  - name: sst2
seeds: [0, 1, 2]
train: {lr: 5.0e-3, batch_size: 8, max_steps: 3}
eval: {max_examples: 48, splits: [dev]}
)");
    run_ = testing::run_cli({"--threads", "1", "-q", "run", (*dir_ / "s.yaml").string(), "--out",
                             (*dir_ / "runs").string(), "--no-table"});
  }
  static void TearDownTestSuite() { delete dir_; }

  static fs::path run_file(const std::string& label, int seed) {
    return *dir_ / "runs" / "sst2" / label / ("seed" + std::to_string(seed)) / "run.h5";
  }

  static testing::TempDir* dir_;
  static testing::CliResult run_;
};

testing::TempDir* PairedTable::dir_ = nullptr;
testing::CliResult PairedTable::run_;

TEST_F(PairedTable, KeptPredictionsScoreToTheFinalMetric) {
  ASSERT_EQ(run_.status, 0) << run_.output;
  for (const std::string label : {"base", "cand"}) {
    for (int seed = 0; seed < 3; ++seed) {
      RunFileReader reader(run_file(label, seed).string());
      const auto predictions = reader.read_doubles("/final_predictions/dev/prediction");
      const auto references = reader.read_doubles("/final_predictions/dev/reference");
      ASSERT_EQ(predictions.size(), 48u);
      ASSERT_EQ(references.size(), 48u);
      double correct = 0;
      for (size_t i = 0; i < predictions.size(); ++i) correct += predictions[i] == references[i];
      EXPECT_NEAR(correct / 48.0, reader.final_metrics("dev").at("accuracy"), 1e-12) << label << " seed " << seed;
    }
  }
}

TEST_F(PairedTable, DifferencesMatchTheRunFiles) {
  ASSERT_EQ(run_.status, 0) << run_.output;
  auto csv = testing::run_cli({"table", "--format", "csv", "--baseline", "base", (*dir_ / "runs").string()});
  ASSERT_EQ(csv.status, 0) << csv.output;
  std::istringstream lines(csv.output);
  std::string header_line, line;
  std::getline(lines, header_line);
  std::map<std::string, std::vector<std::string>> rows;
  while (std::getline(lines, line))
    if (!line.empty()) rows[split_csv_line(line).at(0)] = split_csv_line(line);
  const auto header = split_csv_line(header_line);
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name << " in " << header_line;
    return size_t(it - header.begin());
  };
  ASSERT_TRUE(rows.count("cand")) << csv.output;
  const auto& cand = rows["cand"];

  // Direct: the mean over the three shared seeds of cand - base in final dev accuracy, and the median.
  double diff = 0;
  std::vector<double> values;
  for (int seed = 0; seed < 3; ++seed) {
    const double b = RunFileReader(run_file("base", seed).string()).final_metrics("dev").at("accuracy");
    const double c = RunFileReader(run_file("cand", seed).string()).final_metrics("dev").at("accuracy");
    diff += (c - b) / 3.0;
    values.push_back(c);
  }
  std::sort(values.begin(), values.end());
  EXPECT_NEAR(std::stod(cand.at(column("sst2_diff"))), diff, 1e-12);
  EXPECT_NEAR(std::stod(cand.at(column("sst2_median"))), values[1], 1e-12);
  const double low = std::stod(cand.at(column("sst2_diff_low")));
  const double high = std::stod(cand.at(column("sst2_diff_high")));
  EXPECT_LE(low, high);
  // A difference of accuracies on 48 examples lies in [-1, 1], and so does every resample's.
  EXPECT_GE(low, -1.0);
  EXPECT_LE(high, 1.0);
  EXPECT_TRUE(rows["base"].at(column("sst2_diff")).empty()) << "the baseline has no difference to itself";

  auto md = testing::run_cli({"table", "--baseline", "base", (*dir_ / "runs").string()});
  ASSERT_EQ(md.status, 0) << md.output;
  EXPECT_NE(md.output.find("Paired difference to base"), std::string::npos) << md.output;
  EXPECT_NE(md.output.find("seeds and evaluation examples resampled"), std::string::npos) << md.output;

  auto unknown = testing::run_cli({"table", "--baseline", "nosuch", (*dir_ / "runs").string()});
  EXPECT_EQ(unknown.status, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("no method label 'nosuch'"), std::string::npos) << unknown.output;
}

}  // namespace
}  // namespace peftlab

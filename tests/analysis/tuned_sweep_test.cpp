// A tuned sweep axis (`sweep: {train.lr: {values, select: {split: validation}}}`): `peftlab table` reports each
// method at the learning rate whose runs have the lowest mean validation loss, names it, and averages only
// those runs; checked against the run files directly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
  return cells;
}

TEST(TunedSweep, TableReportsEachMethodAtItsOwnBestRate) {
  testing::TempDir dir;
  testing::write_file(dir / "s.yaml", "name: tuned\nmodel: {path: " + testing::stories260k_bin().string() +
                                          ", tokenizer: " + testing::stories260k_tokenizer().string() + "}\n" + R"(methods:
  - {name: full, label: full}
  - {name: lora, label: lora, rank: 4, alpha: 8, targets: [q_proj, v_proj]}
tasks:
  - name: sst2
seeds: [0, 1]
train: {batch_size: 8, max_steps: 4}
eval: {max_examples: 32, splits: [dev], validation: 32, write_predictions: false}
sweep:
  train.lr: {values: [3.0e-2, 1.0e-4], select: {split: validation, metric: loss}}
)");
  auto run = testing::run_cli({"--threads", "1", "-q", "run", (dir / "s.yaml").string(), "--out",
                               (dir / "runs").string(), "--no-table"});
  ASSERT_EQ(run.status, 0) << run.output;

  // Direct: per method, the mean final validation loss of each rate's runs; the lower one is chosen.
  std::map<std::string, std::string> expected_rate;
  std::map<std::string, double> expected_mean;
  for (const std::string label : {"full", "lora"}) {
    double best = INFINITY;
    for (const std::string rate : {"3.0e-2", "1.0e-4"}) {
      double loss = 0, accuracy = 0;
      for (int seed = 0; seed < 2; ++seed) {
        RunFileReader reader((dir / "runs" / "sst2" / label / ("lr=" + rate) / ("seed" + std::to_string(seed)) / "run.h5").string());
        loss += reader.final_metrics("validation").at("loss") / 2;
        accuracy += reader.final_metrics("dev").at("accuracy") / 2;
      }
      if (loss < best) best = loss, expected_rate[label] = "lr=" + rate, expected_mean[label] = accuracy;
    }
  }

  auto csv = testing::run_cli({"table", "--format", "csv", (dir / "runs").string()});
  ASSERT_EQ(csv.status, 0) << csv.output;
  std::istringstream lines(csv.output);
  std::string header_line, line;
  std::getline(lines, header_line);
  const auto header = cells_of(header_line);
  auto column = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name << " in " << header_line;
    return size_t(it - header.begin());
  };
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const auto cells = cells_of(line);
    ++rows;
    ASSERT_TRUE(expected_rate.count(cells.at(0))) << line;
    EXPECT_EQ(cells.at(column("sst2_chosen")), expected_rate[cells[0]]) << line;
    EXPECT_NEAR(std::stod(cells.at(column("sst2_mean"))), expected_mean[cells[0]], 1e-12) << line;
    EXPECT_EQ(cells.at(column("sst2_n")), "2") << "only the chosen rate's two seeds: " << line;
  }
  EXPECT_EQ(rows, 2);

  auto md = testing::run_cli({"table", (dir / "runs").string()});
  ASSERT_EQ(md.status, 0) << md.output;
  EXPECT_NE(md.output.find("Tuned: each method at its own best value"), std::string::npos) << md.output;
  EXPECT_NE(md.output.find("sst2 / lora: " + expected_rate["lora"] + ": validation loss"), std::string::npos) << md.output;
  // The footnote names the protocol: the spec's 32-example hold-out chose the weights of every reported run.
  EXPECT_NE(md.output.find("Selection (which weights each number comes from):"), std::string::npos) << md.output;
  EXPECT_NE(md.output.find("by validation loss (32 examples held out of the training split): sst2/full, sst2/lora\n"),
            std::string::npos)
      << md.output;

  // The figures show the same choice: each method's curves average its chosen rate's two seeds only.
  auto plot = testing::run_cli({"plot", (dir / "runs").string(), "--kind", "curves", "--out", (dir / "fig").string()});
  ASSERT_EQ(plot.status, 0) << plot.output;
  const auto record = nlohmann::json::parse(testing::read_file(dir / "fig" / "curves_sst2.json"));
  ASSERT_EQ(record.at("methods").size(), 2u) << record.dump();
  for (const auto& method : record.at("methods")) EXPECT_EQ(method.at("runs"), 2) << method.dump();
  for (const std::string label : {"full", "lora"})
    EXPECT_NE(plot.output.find("figures: sst2 / " + label + " at " + expected_rate[label]), std::string::npos)
        << plot.output;
}

TEST(TunedSweep, SpecErrorsNameTheLine) {
  testing::TempDir dir;
  const std::string head = "name: t\nmodel: {path: " + testing::stories260k_bin().string() + ", tokenizer: " +
                           testing::stories260k_tokenizer().string() +
                           "}\nmethods:\n  - {name: lora, rank: 4}\ntasks:\n  - name: sst2\ntrain: {max_steps: 2}\nsweep:\n";
  testing::write_file(dir / "a.yaml", head + "  method.rank: {values: [4, 8], select: {split: validation}}\n");
  auto a = testing::run_cli({"validate", (dir / "a.yaml").string()});
  EXPECT_EQ(a.status, 2) << a.output;
  EXPECT_NE(a.output.find("a.yaml:9:"), std::string::npos) << a.output;
  EXPECT_NE(a.output.find("can be tuned"), std::string::npos) << a.output;
  testing::write_file(dir / "b.yaml", head + "  train.lr: {values: [1.0e-3], selct: {split: validation}}\n");
  auto b = testing::run_cli({"validate", (dir / "b.yaml").string()});
  EXPECT_EQ(b.status, 2) << b.output;
  EXPECT_NE(b.output.find("unknown key 'selct'"), std::string::npos) << b.output;
}

}  // namespace
}  // namespace peftlab

// `peftlab table|plot|report` on synthetic run files written with RunRecorder: every number checked here
// is computed directly from the values written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>
#include <sstream>

#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;
using testing::TempDir;

struct FakeRun {
  std::string method, label, task;
  int64_t seed = 0;
  RunStatus status = RunStatus::completed;
  double headline = 0;  // final dev accuracy
  double decomposition_scale = 0;  // 0: no decomposition recorded
  std::string metric = "accuracy";
  std::string direction = "higher";  // recorded in metric_directions; empty: not recorded
};

// Decomposition statistics of layer `layer` at record index k: chosen so every point is distinct.
double fake_dD(const FakeRun& r, int layer, int k) { return r.decomposition_scale * (1 + layer) * (k + 1) * 1e-3; }
double fake_dM(const FakeRun& r, int layer, int k) {
  return (r.method == "full" ? -2.0 : 3.0) * fake_dD(r, layer, k) + 0.01 * layer + 1e-4 * k * k;
}
double fake_loss(const FakeRun& r, int64_t step) { return 2.0 / (1 + step) + 0.1 * r.seed; }

const std::vector<int64_t> kRecordSteps = {10, 20, 30};
const std::vector<std::string> kLayers = {"layers.0.self_attn.q_proj", "layers.1.self_attn.q_proj"};

fs::path write_run(const fs::path& root, const FakeRun& r) {
  fs::path dir = root / (r.label + "_" + r.task + "_s" + std::to_string(r.seed));
  RunProvenance p;
  p.run_id = dir.filename().string();
  p.method = r.method;
  p.method_label = r.label;
  p.task = r.task;
  p.seed = r.seed;
  p.headline_metric = r.metric;
  p.trainable_params = r.method == "full" ? 1000 : 40;
  p.total_params = 1000;
  RunRecorder rec = RunRecorder::create((dir / "run.h5").string(), p);
  if (!r.direction.empty()) rec.set_attribute("metric_directions", nlohmann::json{{r.metric, r.direction}}.dump());
  for (int64_t step = 0; step <= 30; step += 5) rec.append_train({step, fake_loss(r, step), 1e-3, 1.0, 100.0});
  for (int64_t step : kRecordSteps) rec.append_eval("dev", step, {{r.metric, r.headline * step / 30.0}});
  if (r.decomposition_scale > 0) {
    for (size_t k = 0; k < kRecordSteps.size(); ++k) {
      for (size_t l = 0; l < kLayers.size(); ++l) {
        DecompositionStats s;
        s.dD_row = fake_dD(r, int(l), int(k));
        s.dM_row = fake_dM(r, int(l), int(k));
        s.dD_col = 2 * s.dD_row;
        s.dM_col = 0.5 * s.dM_row;
        rec.append_decomposition(kLayers[l], kRecordSteps[k], s);
      }
    }
  }
  rec.set_final("dev", {{r.metric, r.headline}});
  rec.finish(r.status);
  return dir;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double sample_std(const std::vector<double>& v) {
  double m = mean(v), ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / double(v.size() - 1));
}

// CSV rows keyed by method: column name -> text.
std::map<std::string, std::map<std::string, std::string>> read_csv(const fs::path& path) {
  std::istringstream in(testing::read_file(path));
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header;
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) header.push_back(cell);
  std::map<std::string, std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    std::stringstream ls(line);
    std::vector<std::string> cells;
    for (std::string cell; std::getline(ls, cell, ',');) cells.push_back(cell);
    cells.resize(header.size());
    for (size_t i = 0; i < header.size(); ++i) rows[cells[0]][header[i]] = cells[i];
  }
  return rows;
}

class AnalysisCli : public ::testing::Test {
 protected:
  TempDir dir;
  fs::path runs = dir / "runs";
  std::vector<double> lora_sst2 = {0.81, 0.84, 0.86}, full_sst2 = {0.90, 0.88}, lora_cola = {0.40, 0.45};
  double full_cola = 0.50;

  void SetUp() override {
    for (size_t s = 0; s < lora_sst2.size(); ++s) write_run(runs, {"lora", "lora r=8", "sst2", int64_t(s), RunStatus::completed, lora_sst2[s], 1.0});
    for (size_t s = 0; s < full_sst2.size(); ++s) write_run(runs, {"full", "full_ft", "sst2", int64_t(s), RunStatus::completed, full_sst2[s], 1.0});
    for (size_t s = 0; s < lora_cola.size(); ++s) write_run(runs, {"lora", "lora r=8", "cola", int64_t(s), RunStatus::completed, lora_cola[s]});
    write_run(runs, {"full", "full_ft", "cola", 0, RunStatus::completed, full_cola});
    // Would be the best of every column if it were (wrongly) averaged in.
    failed_dir = write_run(runs, {"dora", "dora r=8", "sst2", 0, RunStatus::failed, 0.99, 5.0});
    write_run(runs, {"lora", "lora r=8", "sst2", 9, RunStatus::running, 0.99});
  }
  fs::path failed_dir;
};

TEST_F(AnalysisCli, TableCsvEqualsDirectMeanAndSampleStd) {
  auto result = run_cli({"table", runs.string(), "--format", "csv", "--out", (dir / "t.csv").string()});
  ASSERT_EQ(result.status, 0) << result.output;
  auto rows = read_csv(dir / "t.csv");
  ASSERT_EQ(rows.size(), 3u);  // lora r=8, full_ft, dora r=8 (no completed run)
  EXPECT_NEAR(std::stod(rows["lora r=8"]["sst2_mean"]), mean(lora_sst2), 1e-12);
  EXPECT_NEAR(std::stod(rows["lora r=8"]["sst2_std"]), sample_std(lora_sst2), 1e-12);
  EXPECT_EQ(rows["lora r=8"]["sst2_n"], "3");  // the running seed 9 is not counted
  EXPECT_NEAR(std::stod(rows["full_ft"]["sst2_mean"]), mean(full_sst2), 1e-12);
  EXPECT_NEAR(std::stod(rows["full_ft"]["sst2_std"]), sample_std(full_sst2), 1e-12);
  EXPECT_EQ(rows["full_ft"]["cola_std"], "");  // one seed: no std
  EXPECT_EQ(rows["full_ft"]["cola_n"], "1");
  EXPECT_EQ(rows["full_ft"]["sst2_best"], "1");
  EXPECT_EQ(rows["lora r=8"]["sst2_best"], "0");
  EXPECT_EQ(rows["full_ft"]["cola_best"], "1");
  EXPECT_NEAR(std::stod(rows["lora r=8"]["avg"]), (mean(lora_sst2) + mean(lora_cola)) / 2, 1e-12);
  EXPECT_NEAR(std::stod(rows["full_ft"]["avg"]), (mean(full_sst2) + full_cola) / 2, 1e-12);
  EXPECT_NEAR(std::stod(rows["lora r=8"]["trainable_percent"]), 4.0, 1e-12);  // 40 / 1000
  EXPECT_EQ(rows["dora r=8"]["sst2_n"], "0");
  EXPECT_EQ(rows["dora r=8"]["sst2_mean"], "");
  EXPECT_NE(result.output.find((failed_dir / "run.h5").string() + ": not averaged in: status failed"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("status running"), std::string::npos) << result.output;
}

TEST_F(AnalysisCli, MarkdownAndLatexMarkTheBestAndListExcludedRuns) {
  auto md = run_cli({"table", runs.string()});
  ASSERT_EQ(md.status, 0) << md.output;
  // Columns are cola, sst2. full_ft sst2: mean 0.89, sample std of {0.90, 0.88} = 0.0141421...
  EXPECT_NE(md.output.find("| full_ft | **0.5000 (n=1)** | **0.8900 ± 0.0141 (n=2)** |"), std::string::npos)
      << md.output;
  EXPECT_NE(md.output.find("Not averaged in (2 run(s)):"), std::string::npos) << md.output;
  EXPECT_NE(md.output.find((failed_dir / "run.h5").string() + ": status failed"), std::string::npos) << md.output;

  auto tex = run_cli({"table", runs.string(), "--format", "latex", "--percent"});
  ASSERT_EQ(tex.status, 0) << tex.output;
  for (const char* piece : {"\\toprule", "\\midrule", "\\bottomrule", "full\\_ft & ",
                            "\\textbf{89.00 $\\pm$ 1.41 (2)}", "% - "})
    EXPECT_NE(tex.output.find(piece), std::string::npos) << piece << "\n" << tex.output;
}

// Which way is better comes from the run files (the task's metric directions), never from the metric's name:
// bits_per_byte holds none of the words a name-based guess looked for.
TEST(AnalysisDirections, TableMarksTheLowestPerplexityAndBitsPerByteAsBest) {
  TempDir dir;
  const fs::path runs = dir / "runs";
  for (const char* metric : {"perplexity", "bits_per_byte"}) {
    const std::string task = std::string("lm_") + metric;
    write_run(runs, {"lora", "lora-r8", task, 0, RunStatus::completed, 12.5, 0, metric, "lower"});
    write_run(runs, {"dora", "dora-r8", task, 0, RunStatus::completed, 9.25, 0, metric, "lower"});
    write_run(runs, {"full", "full", task, 0, RunStatus::completed, 30.0, 0, metric, "lower"});
  }
  auto result = run_cli({"table", runs.string(), "--format", "csv", "--out", (dir / "t.csv").string()});
  ASSERT_EQ(result.status, 0) << result.output;
  auto rows = read_csv(dir / "t.csv");
  for (const char* task : {"lm_perplexity", "lm_bits_per_byte"}) {
    EXPECT_EQ(rows["dora-r8"][std::string(task) + "_best"], "1") << task;
    EXPECT_EQ(rows["lora-r8"][std::string(task) + "_best"], "0") << task;
    EXPECT_EQ(rows["full"][std::string(task) + "_best"], "0") << task;
  }
  auto md = run_cli({"table", runs.string()});
  ASSERT_EQ(md.status, 0) << md.output;
  EXPECT_NE(md.output.find("**9.2500 (n=1)**"), std::string::npos) << md.output;
  EXPECT_EQ(md.output.find("**30.0000"), std::string::npos) << md.output;
}

TEST(AnalysisDirections, NoRecordedDirectionMarksNoBestAndDisagreementIsAnError) {
  TempDir dir;
  write_run(dir / "a", {"lora", "lora-r8", "t", 0, RunStatus::completed, 1.0, 0, "score", ""});
  write_run(dir / "a", {"dora", "dora-r8", "t", 0, RunStatus::completed, 2.0, 0, "score", ""});
  auto result = run_cli({"table", (dir / "a").string(), "--format", "csv", "--out", (dir / "t.csv").string()});
  ASSERT_EQ(result.status, 0) << result.output;
  auto rows = read_csv(dir / "t.csv");
  EXPECT_EQ(rows["lora-r8"]["t_best"], "0");
  EXPECT_EQ(rows["dora-r8"]["t_best"], "0");
  write_run(dir / "b", {"lora", "lora-r8", "t", 0, RunStatus::completed, 1.0, 0, "score", "lower"});
  write_run(dir / "b", {"dora", "dora-r8", "t", 0, RunStatus::completed, 2.0, 0, "score", "higher"});
  auto clash = run_cli({"table", (dir / "b").string()});
  EXPECT_EQ(clash.status, 2) << clash.output;
  EXPECT_NE(clash.output.find("disagree on whether higher or lower score is better"), std::string::npos) << clash.output;
}

TEST_F(AnalysisCli, BadInputIsOneErrorLine) {
  auto none = run_cli({"table", (dir / "nope").string()});
  EXPECT_EQ(none.status, 2);
  EXPECT_EQ(none.output, "error: " + (dir / "nope").string() + ": no such file or folder\n");

  fs::create_directories(dir / "junk");
  testing::write_file(dir / "junk" / "run.h5", "garbage");
  auto junk = run_cli({"plot", (dir / "junk").string(), "--kind", "curves", "--out", (dir / "figs").string()});
  EXPECT_EQ(junk.status, 2);
  EXPECT_EQ(junk.output.rfind("error: " + (dir / "junk" / "run.h5").string() + ": unreadable run file", 0), 0u)
      << junk.output;
  EXPECT_EQ(std::count(junk.output.begin(), junk.output.end(), '\n'), 1) << junk.output;
}

// Slow only because every CLI call starts LibTorch and Python (seconds each on the shared machines).
TEST_F(AnalysisCli, SlowMetricOverrideAndMoreBadInput) {
  auto missing = run_cli({"table", runs.string(), "--metric", "sst2=f1"});
  EXPECT_EQ(missing.status, 0) << missing.output;  // every sst2 run is listed as lacking f1
  EXPECT_NE(missing.output.find("final/dev has no metric 'f1'"), std::string::npos) << missing.output;

  fs::create_directories(dir / "empty");
  auto empty = run_cli({"table", (dir / "empty").string()});
  EXPECT_EQ(empty.status, 2);
  EXPECT_NE(empty.output.find("no run.h5 files found"), std::string::npos) << empty.output;

  auto bad_metric = run_cli({"table", runs.string(), "--metric", "sst2"});
  EXPECT_EQ(bad_metric.status, 2);
  EXPECT_NE(bad_metric.output.find("expected task=metric"), std::string::npos) << bad_metric.output;
}

// Least squares and Pearson r computed here, independently of numpy.
void expect_fit(const nlohmann::json& panel) {
  std::vector<double> x, y;
  for (const auto& p : panel["points"]) x.push_back(p["dD"].get<double>()), y.push_back(p["dM"].get<double>());
  double mx = mean(x), my = mean(y), sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i)
    sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
  EXPECT_NEAR(panel["slope"].get<double>(), sxy / sxx, 1e-9);
  EXPECT_NEAR(panel["pearson_r"].get<double>(), sxy / std::sqrt(sxx * syy), 1e-12);
}

TEST_F(AnalysisCli, DynamicsPlotDataEqualTheRecordedStatistics) {
  fs::path out = dir / "figs";
  auto result = run_cli({"plot", runs.string(), "--kind", "dynamics", "--out", out.string(), "--include-incomplete"});
  ASSERT_EQ(result.status, 0) << result.output;
  for (const char* dim : {"row", "col"}) {
    fs::path stem = out / (std::string("dynamics_sst2_q_proj_") + dim);
    ASSERT_TRUE(fs::exists(stem.string() + ".png")) << result.output;
    EXPECT_EQ(testing::read_file(stem.string() + ".png").substr(1, 3), "PNG");
    auto data = nlohmann::json::parse(testing::read_file(stem.string() + ".json"));
    // Panels: dora r=8 (1 failed run, included on request), full_ft (2 seeds), lora r=8 (3 seeds).
    ASSERT_EQ(data["panels"].size(), 3u);
    for (const auto& panel : data["panels"]) {
      std::string label = panel["method"];
      FakeRun run{label == "full_ft" ? "full" : "lora", label, "sst2", 0, RunStatus::completed, 0,
                  label == "dora r=8" ? 5.0 : 1.0};
      ASSERT_EQ(panel["points"].size(), kLayers.size() * kRecordSteps.size());
      for (const auto& p : panel["points"]) {
        int layer = p["layer"] == kLayers[0] ? 0 : 1;
        auto k = int(std::find(kRecordSteps.begin(), kRecordSteps.end(), p["step"].get<int64_t>()) - kRecordSteps.begin());
        ASSERT_LT(k, 3);
        // Seeds recorded identical statistics, so their mean is the recorded value.
        double dD = fake_dD(run, layer, k), dM = fake_dM(run, layer, k);
        if (std::string(dim) == "col") dD *= 2, dM *= 0.5;
        EXPECT_NEAR(p["dD"].get<double>(), dD, 1e-15);
        EXPECT_NEAR(p["dM"].get<double>(), dM, 1e-15);
      }
      expect_fit(panel);
      EXPECT_EQ(panel["slope"].get<double>() < 0, label == "full_ft");
    }
  }
  auto svg = run_cli({"plot", runs.string(), "--kind", "dynamics", "--out", (dir / "svg").string(), "--format", "svg"});
  ASSERT_EQ(svg.status, 0) << svg.output;
  EXPECT_NE(testing::read_file(dir / "svg" / "dynamics_sst2_q_proj_row.svg").find("<svg"), std::string::npos);
  // Without --include-incomplete the failed dora run is left out and says so.
  auto data = nlohmann::json::parse(testing::read_file(dir / "svg" / "dynamics_sst2_q_proj_row.json"));
  EXPECT_EQ(data["panels"].size(), 2u);
  EXPECT_NE(svg.output.find("left out of the figures: status failed"), std::string::npos);
}

TEST_F(AnalysisCli, CurvesDataAreTheMeanAndRangeOverSeeds) {
  fs::path out = dir / "curves";
  auto result = run_cli({"plot", runs.string(), "--kind", "curves", "--out", out.string()});
  ASSERT_EQ(result.status, 0) << result.output;
  auto data = nlohmann::json::parse(testing::read_file(out / "curves_sst2.json"));
  bool found = false;
  for (const auto& m : data["methods"]) {
    if (m["method"] != "lora r=8") continue;
    found = true;
    EXPECT_EQ(m["runs"], 3);
    const auto& loss = m["loss"];
    for (size_t i = 0; i < loss["step"].size(); ++i) {
      int64_t step = loss["step"][i];
      std::vector<double> v;
      for (int64_t seed = 0; seed < 3; ++seed) v.push_back(fake_loss({"lora", "", "", seed}, step));
      EXPECT_NEAR(loss["mean"][i].get<double>(), mean(v), 1e-12);
      EXPECT_NEAR(loss["min"][i].get<double>(), fake_loss({"lora", "", "", 0}, step), 1e-12);
      EXPECT_NEAR(loss["max"][i].get<double>(), fake_loss({"lora", "", "", 2}, step), 1e-12);
    }
    EXPECT_EQ(loss["step"].size(), 7u);
    const auto& ev = m["eval"];
    ASSERT_EQ(ev["step"].size(), 3u);
    EXPECT_NEAR(ev["mean"][2].get<double>(), mean(lora_sst2), 1e-12);  // step 30: headline * 30/30
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(fs::exists(out / "curves_cola.png"));
}

TEST_F(AnalysisCli, ReportIsOneSelfContainedPage) {
  fs::path page = dir / "report.html";
  auto result = run_cli({"report", runs.string(), "--out", page.string()});
  ASSERT_EQ(result.status, 0) << result.output;
  std::string html = testing::read_file(page);
  EXPECT_NE(html.find("<table>"), std::string::npos);
  EXPECT_NE(html.find("<b>0.8900 ± 0.0141"), std::string::npos);
  EXPECT_NE(html.find("Not averaged in"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("dynamics_sst2_q_proj_row.png"), std::string::npos);  // the figure's alt text
  std::regex remote(R"((src|href)\s*=\s*["']?\s*(https?:)?//|url\(\s*["']?(https?:)?//|@import)", std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, remote)) << "the report must not load anything from the network";
}

}  // namespace
}  // namespace peftlab

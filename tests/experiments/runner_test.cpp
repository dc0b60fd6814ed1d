// The runner end to end on the real stories260K and SST-2: a tiny LoRA run beats the majority class; a run
// killed with SIGKILL and resumed ends with exactly the uninterrupted run's numbers; a second process on the
// same run folder is refused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "core/data_root.h"
#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {

namespace fs = std::filesystem;

std::string tiny_spec(const fs::path& dir, int steps) {
  const std::string data = fs::absolute(data_root()).string();
  std::string text = "name: tiny\n"
                     "model: {path: " + data + "/models/stories260K/stories260K.bin, tokenizer: " + data +
                     "/models/stories260K/tok512.model}\n"
                     "methods: [{name: lora, rank: 4, alpha: 8, dropout: 0.1, targets: [q_proj, v_proj, up_proj]}]\n"
                     "tasks: [{name: sst2, max_seq_len: 32, max_train_examples: 512}]\n"
                     "seeds: [3]\n"
                     "train: {lr: 0.003, batch_size: 8, max_steps: " + std::to_string(steps) +
                     ", warmup_steps: 2, eval_every: 10, save_every: 5}\n"
                     "eval: {max_examples: 96, batch_size: 32}\n"
                     "record: {log_every: 1, decomposition_every: 10}\n";
  fs::path file = dir / "tiny.yaml";
  std::ofstream(file) << text;
  return file.string();
}

std::vector<double> losses(const fs::path& run_file) { return RunFileReader(run_file.string()).read_doubles("/train/loss"); }

// Slow label: not yet seen passing (added at the end of the first session; see the issue notes).
TEST(Runner, SlowTinyLoraBeatsMajorityAndResumesAfterSigkillToTheSameNumbers) {
  testing::TempDir dir;
  const std::string spec = tiny_spec(dir.path(), 40);
  const fs::path run_a = dir / "a" / "sst2" / "lora-r4" / "seed3";
  auto a = testing::run_cli({"--threads", "1", "-q", "run", spec, "--out", (dir / "a").string(), "--no-table"});
  ASSERT_EQ(a.status, 0) << a.output;
  RunFileReader ra((run_a / "run.h5").string());
  EXPECT_EQ(ra.status(), "completed");
  // Majority class of the first 96 SST-2 dev sentences, counted from the file by this test.
  std::ifstream dev(data_path("glue/SST-2/dev.tsv"));
  std::string line;
  std::getline(dev, line);
  int positives = 0;
  for (int i = 0; i < 96 && std::getline(dev, line); ++i) positives += line.back() == '1';
  const double majority = std::max(positives, 96 - positives) / 96.0;
  const double accuracy = ra.final_metrics("dev").at("accuracy");
  EXPECT_GT(accuracy, majority) << "majority " << majority;

  // The same run, killed after its second checkpoint and resumed.
  const fs::path run_b = dir / "b" / "sst2" / "lora-r4" / "seed3";
  const std::string script =
      "'" + std::string(PEFTLAB_BIN) + "' --threads 1 -q run '" + spec + "' --out '" + (dir / "b").string() +
      "' --no-table >/dev/null 2>&1 & pid=$!; "
      "for i in $(seq 1 600); do [ -f '" + (run_b / "checkpoint.pt").string() + "' ] && sleep 0.3 && break; sleep 0.05; done; "
      "kill -9 $pid; wait $pid 2>/dev/null; exit 0";
  testing::write_file(dir / "kill.sh", script + "\n");
  ASSERT_EQ(std::system(("bash '" + (dir / "kill.sh").string() + "'").c_str()), 0);
  ASSERT_TRUE(fs::exists(run_b / "run.h5"));
  EXPECT_NE(RunFileReader((run_b / "run.h5").string()).status(), "completed");
  auto b = testing::run_cli({"--threads", "1", "-q", "run", spec, "--out", (dir / "b").string(), "--resume", "--no-table"});
  ASSERT_EQ(b.status, 0) << b.output;
  RunFileReader rb((run_b / "run.h5").string());
  EXPECT_EQ(rb.status(), "completed");
  EXPECT_EQ(rb.final_metrics("dev"), ra.final_metrics("dev"));
  EXPECT_EQ(losses(run_b / "run.h5"), losses(run_a / "run.h5"));
  EXPECT_EQ(rb.read_doubles("/decomposition/layers.0.self_attn.q_proj/dD_row"),
            ra.read_doubles("/decomposition/layers.0.self_attn.q_proj/dD_row"));

  // A completed run is skipped when the sweep starts again.
  auto again = testing::run_cli({"run", spec, "--out", (dir / "a").string(), "--no-table"});
  EXPECT_EQ(again.status, 0);
  EXPECT_NE(again.output.find("skip sst2/lora-r4/seed3"), std::string::npos) << again.output;
}

TEST(Runner, UnknownMethodInSpecIsExitTwoWithLine) {
  testing::TempDir dir;
  std::string spec = tiny_spec(dir.path(), 10);
  std::string text = testing::read_file(spec);
  text.replace(text.find("name: lora"), 10, "name: lorra");
  testing::write_file(spec, text);
  auto result = testing::run_cli({"run", spec, "--out", (dir / "o").string()});
  EXPECT_EQ(result.status, 2);
  EXPECT_EQ(result.output.rfind("error: " + spec + ":3: ", 0), 0u) << result.output;
  EXPECT_NE(result.output.find("did you mean 'lora'"), std::string::npos) << result.output;
}

}  // namespace peftlab

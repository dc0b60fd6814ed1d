// Data-parallel training: two processes (c10d Gloo, `peftlab run --nproc 2`) each take half of every batch
// and must take the same optimizer steps as one process on the whole batch.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/data_root.h"
#include "core/recorder.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;

fs::path write_spec(const testing::TempDir& dir, const std::string& method) {
  const std::string data = fs::absolute(data_root()).string();
  fs::path file = dir / "dp.yaml";
  std::ofstream(file) << "name: dp\nmodel: {path: " << data << "/models/stories260K/stories260K.bin, tokenizer: " << data
                      << "/models/stories260K/tok512.model}\n"
                      << "methods: [" << method << "]\n"
                      << "tasks: [{name: sst2, max_seq_len: 32, max_train_examples: 256}]\nseeds: [1]\n"
                      << "train: {lr: 0.003, batch_size: 9, grad_accum: 2, max_steps: 12, warmup_steps: 2, eval_every: 6}\n"
                      << "eval: {max_examples: 64}\nrecord: {log_every: 1}\n";
  return file;
}

fs::path run_file(const fs::path& out) {
  for (const auto& entry : fs::recursive_directory_iterator(out))
    if (entry.path().filename() == "run.h5") return entry.path();
  return {};
}

void expect_two_processes_equal_one(const std::string& method) {
  testing::TempDir dir;
  const std::string spec = write_spec(dir, method).string();
  auto one = testing::run_cli({"--threads", "2", "-q", "run", spec, "--out", (dir / "one").string(), "--no-table"});
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = testing::run_cli({"--threads", "2", "-q", "run", spec, "--out", (dir / "two").string(), "--no-table",
                               "--nproc", "2"});
  ASSERT_EQ(two.status, 0) << two.output;
  RunFileReader a(run_file(dir / "one").string()), b(run_file(dir / "two").string());
  EXPECT_EQ(b.status(), "completed");
  const auto world = std::get<int64_t>(b.attribute("world_size"));
  EXPECT_EQ(world, 2);
  auto loss_a = a.read_doubles("/train/loss"), loss_b = b.read_doubles("/train/loss");
  auto grad_a = a.read_doubles("/train/grad_norm"), grad_b = b.read_doubles("/train/grad_norm");
  ASSERT_EQ(loss_a.size(), 12u);
  ASSERT_EQ(loss_b.size(), loss_a.size());
  for (size_t i = 0; i < loss_a.size(); ++i) {
    EXPECT_NEAR(loss_b[i], loss_a[i], 1e-4 * std::abs(loss_a[i])) << "step " << i + 1;
    EXPECT_NEAR(grad_b[i], grad_a[i], 1e-3 * std::abs(grad_a[i]) + 1e-6) << "step " << i + 1;
  }
  // The weights agree to float rounding; at most one of 64 predictions may flip on a near-tie.
  EXPECT_NEAR(b.final_metrics("dev").at("accuracy"), a.final_metrics("dev").at("accuracy"), 1.0 / 64 + 1e-12);
}

TEST(DataParallel, TwoProcessesTakeTheOneProcessStepsLora) {
  expect_two_processes_equal_one("{name: lora, rank: 4, alpha: 8, targets: [q_proj, v_proj, up_proj]}");
}

TEST(DataParallel, TwoProcessesTakeTheOneProcessStepsFullFineTuning) { expect_two_processes_equal_one("{name: full}"); }

// One process of a data-parallel group killed: the other fails on its next collective, and the run file says
// "failed" instead of staying "running" as if someone still worked on it.
TEST(DataParallel, ARankKilledLeavesTheRunFailedNotRunning) {
  testing::TempDir dir;
  std::string text = testing::read_file(write_spec(dir, "{name: lora}"));
  text.replace(text.find("max_steps: 12"), 13, "max_steps: 100000");
  testing::write_file(dir / "dp.yaml", text);
  const fs::path out = dir / "o";
  const std::string script =
      "'" + std::string(PEFTLAB_BIN) + "' --threads 2 -q run '" + (dir / "dp.yaml").string() + "' --out '" +
      out.string() + "' --no-table --nproc 2 > '" + (dir / "log").string() + "' 2>&1 & parent=$!\n"
      "for i in $(seq 1200); do f=$(find '" + out.string() + "' -name run.h5 2>/dev/null | head -1); "
      "[ -n \"$f\" ] && break; sleep 0.05; done\nsleep 1\n"
      "for child in $(pgrep -P $parent); do grep -qz '^RANK=1$' /proc/$child/environ && kill -9 $child; done\n"
      "wait $parent; echo $? > '" + (dir / "status").string() + "'\n";
  testing::write_file(dir / "kill.sh", script);
  ASSERT_EQ(std::system(("timeout 120 bash '" + (dir / "kill.sh").string() + "'").c_str()), 0)
      << testing::read_file(dir / "log");
  EXPECT_NE(std::stoi(testing::read_file(dir / "status")), 0) << testing::read_file(dir / "log");
  EXPECT_EQ(RunFileReader(run_file(out).string()).status(), "failed") << testing::read_file(dir / "log");
}

TEST(DataParallel, MalformedLauncherEnvironmentIsExitTwo) {
  testing::TempDir dir;
  const std::string spec = write_spec(dir, "{name: lora}").string();
  const std::string command = "WORLD_SIZE=two '" + std::string(PEFTLAB_BIN) + "' run '" + spec + "' --out '" +
                              (dir / "o").string() + "' > '" + (dir / "log").string() + "' 2>&1";
  const int status = std::system(command.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(testing::read_file(dir / "log").find("error: environment WORLD_SIZE: 'two' is not an integer"),
            std::string::npos)
      << testing::read_file(dir / "log");
}

}  // namespace
}  // namespace peftlab

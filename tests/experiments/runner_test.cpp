// The runner end to end on the real stories260K and SST-2: a tiny LoRA run beats the majority class; a run
// killed with SIGKILL and resumed ends with exactly the uninterrupted run's numbers; a second process on the
// same run folder is refused.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>
#include <sys/wait.h>
#include <fstream>

#include "core/data_root.h"
#include "core/errors.h"
#include "core/recorder.h"
#include "core/runtime.h"
#include "experiments/checkpoint.h"
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

fs::path run_dir_of(const fs::path& out) { return out / "sst2" / "lora-r4" / "seed3"; }

// Runs `peftlab run` in the background and SIGKILLs it after `delay_ms` (or when it ends by itself first).
// Returns true when the kill came before the run finished.
bool run_and_kill_after(const std::string& spec, const fs::path& out, int delay_ms, bool resume) {
  const std::string script = "'" + std::string(PEFTLAB_BIN) + "' --threads 1 -q run '" + spec + "' --out '" +
                             out.string() + "' --no-table" + (resume ? " --resume" : "") +
                             " >/dev/null 2>&1 & pid=$!; "
                             "sleep " + std::to_string(delay_ms / 1000.0) + "; "
                             "if kill -9 $pid 2>/dev/null; then wait $pid; exit 10; fi; wait $pid; exit 0";
  const fs::path file = out.parent_path() / ("kill-" + out.filename().string() + ".sh");
  testing::write_file(file, script + "\n");
  const int status = std::system(("bash '" + file.string() + "'").c_str());
  return WIFEXITED(status) && WEXITSTATUS(status) == 10;
}

struct RunNumbers {
  std::string status;
  std::map<std::string, double> final_dev;
  std::vector<double> loss, dD;
  std::vector<int64_t> eval_steps;
};

RunNumbers numbers(const fs::path& run_dir) {
  RunFileReader r((run_dir / "run.h5").string());
  RunNumbers n;
  n.status = r.status();
  if (n.status != "completed") return n;
  n.final_dev = r.final_metrics("dev");
  n.loss = r.read_doubles("/train/loss");
  n.dD = r.read_doubles("/decomposition/layers.0.self_attn.q_proj/dD_row");
  n.eval_steps = r.read_ints("/eval/dev/step");
  return n;
}

void expect_same_numbers(const RunNumbers& got, const RunNumbers& want, const std::string& what) {
  EXPECT_EQ(got.status, "completed") << what;
  EXPECT_EQ(got.final_dev, want.final_dev) << what;
  EXPECT_EQ(got.loss, want.loss) << what;
  EXPECT_EQ(got.dD, want.dD) << what;
  EXPECT_EQ(got.eval_steps, want.eval_steps) << what;
}

RunNumbers uninterrupted(const std::string& spec, const fs::path& out) {
  auto r = testing::run_cli({"--threads", "1", "-q", "run", spec, "--out", out.string(), "--no-table"});
  EXPECT_EQ(r.status, 0) << r.output;
  return numbers(run_dir_of(out));
}

TEST(Runner, KilledThenResumedRunEndsWithTheUninterruptedNumbersAndFinishedRunsAreSkipped) {
  testing::TempDir dir;
  const std::string spec = tiny_spec(dir.path(), 24);
  const RunNumbers reference = uninterrupted(spec, dir / "a");
  ASSERT_EQ(reference.status, "completed");

  // Killed once its first checkpoint exists (so the resume really continues mid-run), then resumed.
  const fs::path out = dir / "b";
  const std::string wait_then_kill =
      "'" + std::string(PEFTLAB_BIN) + "' --threads 1 -q run '" + spec + "' --out '" + out.string() +
      "' --no-table >/dev/null 2>&1 & pid=$!; "
      "for i in $(seq 1 600); do [ -f '" + (run_dir_of(out) / "checkpoint.pt").string() + "' ] && break; sleep 0.05; done; "
      "sleep 0.2; kill -9 $pid; wait $pid 2>/dev/null; exit 0";
  testing::write_file(dir / "kill.sh", wait_then_kill + "\n");
  ASSERT_EQ(std::system(("bash '" + (dir / "kill.sh").string() + "'").c_str()), 0);
  ASSERT_TRUE(fs::exists(run_dir_of(out) / "run.h5"));
  EXPECT_EQ(RunFileReader((run_dir_of(out) / "run.h5").string()).status(), "running");
  auto resumed = testing::run_cli({"--threads", "1", "-q", "run", spec, "--out", out.string(), "--resume", "--no-table"});
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  expect_same_numbers(numbers(run_dir_of(out)), reference, "resumed after SIGKILL");

  // A completed run is skipped when the sweep starts again.
  auto again = testing::run_cli({"run", spec, "--out", (dir / "a").string(), "--no-table"});
  EXPECT_EQ(again.status, 0);
  EXPECT_NE(again.output.find("skip sst2/lora-r4/seed3"), std::string::npos) << again.output;
}

// 20 SIGKILLs at moments drawn uniformly over a run's duration (issue: reliability). After each: the run
// file opens and does not read as completed unless the run had finished; resuming (killed again at a second
// random moment half of the time) ends with exactly the uninterrupted run's numbers.
TEST(Runner, SlowSigkillAtTwentyRandomMomentsNeverLosesARun) {
  testing::TempDir dir;
  const std::string spec = tiny_spec(dir.path(), 24);
  const auto started = std::chrono::steady_clock::now();
  const RunNumbers reference = uninterrupted(spec, dir / "reference");
  const int duration_ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - started).count());
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> moment(0, duration_ms);
  int killed_mid_run = 0, identical = 0;
  constexpr int kTrials = 20;
  for (int trial = 0; trial < kTrials; ++trial) {
    const fs::path out = dir / ("t" + std::to_string(trial));
    const bool killed = run_and_kill_after(spec, out, moment(rng), false);
    killed_mid_run += killed;
    const fs::path file = run_dir_of(out) / "run.h5";
    if (fs::exists(file)) {
      const std::string status = RunFileReader(file.string()).status();  // opens: never a damaged file
      if (killed) {
        EXPECT_EQ(status, "running") << "trial " << trial;
      }
    }
    if (trial % 2 == 1) run_and_kill_after(spec, out, moment(rng), true);  // killed during the resume too
    auto resumed = testing::run_cli({"--threads", "1", "-q", "run", spec, "--out", out.string(), "--resume", "--no-table"});
    ASSERT_EQ(resumed.status, 0) << "trial " << trial << ": " << resumed.output;
    RunNumbers got = numbers(run_dir_of(out));
    expect_same_numbers(got, reference, "trial " + std::to_string(trial));
    identical += got.final_dev == reference.final_dev && got.loss == reference.loss;
  }
  std::printf("[ figures  ] %d trials, %d killed mid-run, %d ended identical to the uninterrupted run\n", kTrials,
              killed_mid_run, identical);
  EXPECT_GE(killed_mid_run, kTrials / 2);
}

TEST(Runner, SecondProcessOnTheSameRunIsRefusedAndADeadProcessesLockDoesNotBlock) {
  testing::TempDir dir;
  const std::string spec = tiny_spec(dir.path(), 150);
  const fs::path out = dir / "o";
  const std::string start = "'" + std::string(PEFTLAB_BIN) + "' --threads 1 -q run '" + spec + "' --out '" +
                            out.string() + "' --no-table >/dev/null 2>&1 & echo $! > '" + (dir / "pid").string() + "'";
  testing::write_file(dir / "start.sh", start + "\n");
  ASSERT_EQ(std::system(("bash '" + (dir / "start.sh").string() + "'").c_str()), 0);
  for (int i = 0; i < 600 && !fs::exists(run_dir_of(out) / "run.h5"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(run_dir_of(out) / "run.h5"));
  auto second = testing::run_cli({"--threads", "1", "run", spec, "--out", out.string(), "--resume", "--no-table"});
  EXPECT_EQ(second.status, 2) << second.output;
  EXPECT_NE(second.output.find("another peftlab process is running this run"), std::string::npos) << second.output;
  std::string pid = testing::read_file(dir / "pid");
  pid.erase(pid.find_last_not_of(" \n") + 1);
  std::system(("kill -9 " + pid + " 2>/dev/null; sleep 0.2").c_str());
  // The lock file is still there, its holder dead: the next process takes the run over.
  ASSERT_TRUE(fs::exists(run_dir_of(out) / ".lock"));
  auto third = testing::run_cli({"--threads", "1", "-q", "run", spec, "--out", out.string(), "--resume", "--no-table"});
  EXPECT_EQ(third.status, 0) << third.output;
  EXPECT_EQ(RunFileReader((run_dir_of(out) / "run.h5").string()).status(), "completed");
}

// The bar for a working pipeline: a brief LoRA fine-tuning of stories260K beats the majority class on the whole SST-2 dev set.
TEST(Runner, SlowBriefLoraOnSst2BeatsTheMajorityClassOnDev) {
  testing::TempDir dir;
  const std::string data = fs::absolute(data_root()).string();
  const fs::path spec = dir / "brief.yaml";
  testing::write_file(spec, "name: brief\nmodel: {path: " + data + "/models/stories260K/stories260K.bin, tokenizer: " +
                                data + "/models/stories260K/tok512.model}\n"
                                "methods: [{name: lora, rank: 8, alpha: 16, targets: all-linear}]\n"
                                "tasks: [{name: sst2, max_seq_len: 64}]\nseeds: [0]\n"
                                "train: {lr: 0.002, batch_size: 16, max_steps: 300, warmup_steps: 30}\n");
  auto r = testing::run_cli({"--threads", "2", "-q", "run", spec.string(), "--out", (dir / "o").string(), "--no-table"});
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream dev(data_path("glue/SST-2/dev.tsv"));
  std::string line;
  std::getline(dev, line);
  int positives = 0, rows = 0;
  for (; std::getline(dev, line); ++rows) positives += line.back() == '1';
  ASSERT_EQ(rows, 872);
  const double majority = double(std::max(positives, rows - positives)) / rows;
  const double accuracy = RunFileReader((dir / "o" / "sst2" / "lora-r8" / "seed0" / "run.h5").string())
                              .final_metrics("dev").at("accuracy");
  std::printf("[ figures  ] SST-2 dev accuracy %.4f, majority class %.4f\n", accuracy, majority);
  EXPECT_GT(accuracy, majority);
}

// A run folder never mixes runs. A fresh run (here with another learning rate, over a completed run) removes
// the earlier run's checkpoint and weights before it starts; stopped by SIGTERM it exits 143, says so, and
// leaves a checkpoint of its own; `eval` refuses the unfinished run; `--resume` with the other settings is
// refused; resumed with its own it completes with every step logged once, in order; an adapter.pt of another
// run is refused by `eval` and `export`.
TEST(Runner, ARunFolderHoldsOneRunsFilesOnly) {
  testing::TempDir dir;
  const std::string spec = tiny_spec(dir.path(), 400);
  const fs::path out = dir / "o", run_dir = run_dir_of(out);
  const std::vector<std::string> base = {"--threads", "1", "-q", "run", spec, "--out", out.string(), "--no-table"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  auto first = testing::run_cli(with({"--set", "train.max_steps=6"}));
  ASSERT_EQ(first.status, 0) << first.output;
  ASSERT_TRUE(fs::exists(run_dir / "checkpoint.pt"));
  const std::string first_identity = file_identity(run_dir / "checkpoint.pt");
  fs::copy_file(run_dir / "adapter.pt", dir / "first_adapter.pt");

  // The second run, in the background, stopped with SIGTERM once its own run file says "running".
  std::string command = "'" + std::string(PEFTLAB_BIN) + "'";
  for (const auto& a : with({"--force", "--set", "train.lr=0.006"})) command += " '" + a + "'";
  testing::write_file(dir / "second.sh", command + " > '" + (dir / "second.out").string() + "' 2>&1 & echo $! > '" +
                                             (dir / "pid").string() + "'; wait $!; echo $? > '" +
                                             (dir / "status").string() + "'\n");
  ASSERT_EQ(std::system(("bash '" + (dir / "second.sh").string() + "' &").c_str()), 0);
  bool running = false;
  for (int i = 0; i < 1200 && !running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    try {
      running = fs::exists(dir / "pid") && RunFileReader((run_dir / "run.h5").string()).status() == "running";
    } catch (const InputError&) {
    }
  }
  ASSERT_TRUE(running);
  std::string pid = testing::read_file(dir / "pid");
  pid.erase(pid.find_last_not_of(" \n") + 1);
  ASSERT_EQ(std::system(("kill -TERM " + pid).c_str()), 0);
  for (int i = 0; i < 2400 && !fs::exists(dir / "status"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(fs::exists(dir / "status"));
  EXPECT_EQ(std::stoi(testing::read_file(dir / "status")), 143);
  EXPECT_NE(testing::read_file(dir / "second.out").find("interrupted by SIGTERM"), std::string::npos)
      << testing::read_file(dir / "second.out");
  RunFileReader stopped((run_dir / "run.h5").string());
  EXPECT_EQ(stopped.status(), "interrupted");
  const std::string second_identity = run_identity(stopped.attribute_string("spec"));
  EXPECT_NE(second_identity, first_identity);
  EXPECT_EQ(file_identity(run_dir / "checkpoint.pt"), second_identity);
  EXPECT_FALSE(fs::exists(run_dir / "adapter.pt"));

  auto eval_unfinished = testing::run_cli({"eval", run_dir.string()});
  EXPECT_EQ(eval_unfinished.status, 2) << eval_unfinished.output;
  EXPECT_NE(eval_unfinished.output.find("has not finished (status interrupted)"), std::string::npos)
      << eval_unfinished.output;
  auto other = testing::run_cli(with({"--resume", "--set", "train.lr=0.003"}));
  EXPECT_EQ(other.status, 2) << other.output;
  EXPECT_NE(other.output.find("records another run"), std::string::npos) << other.output;

  auto resumed = testing::run_cli(with({"--resume", "--set", "train.lr=0.006"}));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  RunFileReader done((run_dir / "run.h5").string());
  EXPECT_EQ(done.status(), "completed");
  const auto steps = done.read_ints("/train/step");
  ASSERT_EQ(steps.size(), 400u);
  for (size_t i = 0; i < steps.size(); ++i) ASSERT_EQ(steps[i], int64_t(i + 1));
  EXPECT_EQ(run_identity(done.attribute_string("spec")), second_identity);

  fs::copy_file(dir / "first_adapter.pt", run_dir / "adapter.pt", fs::copy_options::overwrite_existing);
  for (const std::string verb : {"eval", "export"}) {
    auto refused = verb == "eval" ? testing::run_cli({"eval", run_dir.string()})
                                  : testing::run_cli({"export", run_dir.string(), "--out", (dir / "x").string()});
    EXPECT_EQ(refused.status, 2) << verb << ": " << refused.output;
    EXPECT_EQ(refused.output, "error: " + (run_dir / "adapter.pt").string() +
                                  ": belongs to another run than run.h5 (the spec differs)\n")
        << verb;
  }
}

// The lm task trains and evaluates end to end on the real stories260K and a real corpus: the training loss
// falls, the held-out perplexity is below 512 (a uniform guess over the 512-piece vocabulary scores exactly
// 512), and `peftlab eval` of the finished run gives the recorded final metrics again.
TEST(Runner, LanguageModelTaskTrainsAndEvaluatesOnARealCorpus) {
  testing::TempDir dir;
  const std::string data = fs::absolute(data_root()).string();
  const fs::path spec = dir / "lm.yaml";
  testing::write_file(spec, "name: lm\nmodel: {path: " + data + "/models/stories260K/stories260K.bin, tokenizer: " +
                                data + "/models/stories260K/tok512.model}\n"
                                "methods: [{name: lora, rank: 4, alpha: 8}]\n"
                                "tasks: [{name: lm, train_file: " + data + "/corpora/botchan.txt, block_size: 64, "
                                "max_eval_examples: 64}]\nseeds: [0]\n"
                                "train: {lr: 0.005, batch_size: 8, max_steps: 30}\n"
                                "record: {log_every: 1}\n");
  const fs::path run_dir = dir / "o" / "lm" / "lora-r4" / "seed0";
  auto r = testing::run_cli({"--threads", "2", "-q", "run", spec.string(), "--out", (dir / "o").string(), "--no-table"});
  ASSERT_EQ(r.status, 0) << r.output;
  RunFileReader run((run_dir / "run.h5").string());
  ASSERT_EQ(run.status(), "completed");
  const auto loss = run.read_doubles("/train/loss");
  ASSERT_EQ(loss.size(), 30u);
  const double first = (loss[0] + loss[1] + loss[2]) / 3, last = (loss[27] + loss[28] + loss[29]) / 3;
  EXPECT_LT(last, first);
  const auto dev = run.final_metrics("dev");
  ASSERT_TRUE(dev.count("perplexity") && dev.count("bits_per_byte") && dev.count("nll_per_token"));
  EXPECT_GT(dev.at("perplexity"), 1.0);
  EXPECT_LT(dev.at("perplexity"), 512.0);
  EXPECT_NEAR(std::log(dev.at("perplexity")), dev.at("nll_per_token"), 1e-9);
  std::printf("[ figures  ] lm on botchan: train loss %.3f -> %.3f, dev perplexity %.2f, %.3f bits/byte\n", first, last,
              dev.at("perplexity"), dev.at("bits_per_byte"));

  auto again = testing::run_cli({"--threads", "2", "-q", "eval", run_dir.string(), "--max-examples", "64"});
  ASSERT_EQ(again.status, 0) << again.output;
  const size_t at = again.output.find("\"perplexity\": ");
  ASSERT_NE(at, std::string::npos) << again.output;
  EXPECT_NEAR(std::stod(again.output.substr(at + 14)), dev.at("perplexity"), 1e-6 * dev.at("perplexity"));
}

TEST(Runner, SpecThreadsSetEachRunsThreadsAndSmallModelsRunSideBySideByDefault) {
  testing::TempDir dir;
  const std::string data = fs::absolute(data_root()).string();
  const fs::path spec = dir / "two.yaml";
  testing::write_file(spec, "name: two\n"
                            "model: {path: " + data + "/models/stories260K/stories260K.bin, tokenizer: " + data +
                            "/models/stories260K/tok512.model}\n"
                            "methods: [{name: lora, rank: 2, targets: [q_proj]}]\n"
                            "tasks: [{name: sst2, max_seq_len: 32, max_train_examples: 64}]\n"
                            "seeds: [0, 1]\n"
                            "train: {lr: 0.003, batch_size: 8, max_steps: 2, eval_every: 0, threads: 1}\n"
                            "eval: {max_examples: 16}\n");
  auto threads_of = [&](const fs::path& out, int seed) {
    return RunFileReader((out / "sst2" / "lora-r2" / ("seed" + std::to_string(seed)) / "run.h5").string())
        .attribute_int("threads");
  };
  // --threads 2 for the process, train.threads 1 for each run: the run's own count wins.
  auto given = testing::run_cli({"--threads", "2", "run", spec.string(), "--out", (dir / "a").string(), "--no-table"});
  ASSERT_EQ(given.status, 0) << given.output;
  EXPECT_EQ(threads_of(dir / "a", 0), 1);
  EXPECT_EQ(threads_of(dir / "a", 1), 1);
  EXPECT_EQ(given.output.find("at a time"), std::string::npos) << given.output;  // --threads given: one after another

  // Neither --jobs nor --threads, a 260K-parameter model: one run per core at once.
  auto automatic = testing::run_cli({"run", spec.string(), "--out", (dir / "b").string(), "--no-table"});
  ASSERT_EQ(automatic.status, 0) << automatic.output;
  if (hardware_threads() >= 2) {
    EXPECT_NE(automatic.output.find("2 runs of models under 10M parameters: 2 at a time, one thread each"),
              std::string::npos) << automatic.output;
  }
  for (int seed : {0, 1}) {
    RunFileReader run((dir / "b" / "sst2" / "lora-r2" / ("seed" + std::to_string(seed)) / "run.h5").string());
    EXPECT_EQ(run.status(), "completed");
    EXPECT_EQ(RunFileReader((dir / "a" / "sst2" / "lora-r2" / ("seed" + std::to_string(seed)) / "run.h5").string())
                  .read_doubles("/train/loss"),
              run.read_doubles("/train/loss"));  // the same numbers either way, at one thread each
  }
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

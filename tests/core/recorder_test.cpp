// The HDF5 run file: round trip of every part of the schema, overwrite protection, resume truncation, and
// crash safety (a forked writer read while it writes, then killed with SIGKILL).
#include "core/recorder.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <cmath>
#include <random>
#include <thread>

#include "core/errors.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

using testing::TempDir;

RunProvenance provenance() {
  RunProvenance p;
  p.run_id = "sst2-lora-s3";
  p.method = "lora";
  p.method_label = "lora r=8";
  p.task = "sst2";
  p.seed = 3;
  p.spec = "method: lora\nrank: 8\n";
  p.git_commit = "abc123";
  p.versions = R"({"peftlab":"0.1.0"})";
  p.host = "box";
  p.threads = 2;
  p.trainable_params = 1234;
  p.total_params = 260000;
  p.headline_metric = "accuracy";
  return p;
}

DecompositionStats stats(double base, int64_t out, int64_t in) {
  DecompositionStats s{base, base + 0.1, base + 0.2, base + 0.3,
                       torch::arange(out, torch::kFloat64) + base, torch::arange(in, torch::kFloat64) * base};
  return s;
}

TEST(Recorder, RoundTripsEveryPartOfTheSchema) {
  TempDir dir;
  std::string path = (dir / "run.h5").string();
  {
    RunRecorder rec = RunRecorder::create(path, provenance());
    rec.set_attribute("note", "first try");
    rec.set_attribute("lr_scale", 0.5);
    rec.set_attribute("tokens_seen", int64_t{4096});
    for (int64_t step = 1; step <= 3; ++step) rec.append_train({step, 1.0 / step, 1e-3 * step, 0.1 * step, 100.0 * step});
    rec.append_eval("dev", 2, {{"accuracy", 0.5}});
    rec.append_eval("dev", 4, {{"accuracy", 0.6}, {"f1", 0.7}});  // f1 appears late
    rec.append_eval("dev", 6, {{"f1", 0.8}});                       // accuracy goes missing
    rec.append_decomposition("layers.0.self_attn.q_proj", 2, stats(1.0, 3, 5), true);
    rec.append_decomposition("layers.0.self_attn.q_proj", 4, stats(2.0, 3, 5), true);
    rec.append_decomposition("layers.1.mlp.down_proj", 4, stats(3.0, 3, 5), false);
    rec.set_final("dev", {{"accuracy", 0.6}, {"f1", 0.8}});
    rec.finish(RunStatus::completed);
  }
  RunFileReader r(path);
  EXPECT_EQ(r.status(), "completed");
  EXPECT_EQ(r.attribute_int("schema_version"), kRunFileSchemaVersion);
  EXPECT_EQ(r.attribute_string("method_label"), "lora r=8");
  EXPECT_EQ(r.attribute_string("spec"), "method: lora\nrank: 8\n");
  EXPECT_EQ(r.attribute_int("seed"), 3);
  EXPECT_EQ(r.attribute_int("trainable_params"), 1234);
  EXPECT_EQ(r.attribute_string("note"), "first try");
  EXPECT_EQ(r.attribute_double("lr_scale"), 0.5);
  EXPECT_EQ(r.attribute_int("tokens_seen"), 4096);
  EXPECT_GT(r.attribute_int("peak_memory_bytes"), 1 << 20);
  EXPECT_EQ(r.attribute_string("start_time").size(), 20u);  // 2026-01-02T03:04:05Z
  EXPECT_EQ(r.attribute_string("end_time").back(), 'Z');
  EXPECT_THROW(r.attribute_string("seed"), InputError);
  EXPECT_THROW(r.attribute("no_such_key"), InputError);

  EXPECT_EQ(r.read_ints("/train/step"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r.read_doubles("/train/loss"), (std::vector<double>{1.0, 0.5, 1.0 / 3}));
  EXPECT_EQ(r.read_doubles("/train/tokens_per_s"), (std::vector<double>{100, 200, 300}));
  EXPECT_EQ(r.read_doubles("/train/lr")[2], 3e-3);

  EXPECT_EQ(r.children("/eval"), (std::vector<std::string>{"dev"}));
  EXPECT_EQ(r.read_ints("/eval/dev/step"), (std::vector<int64_t>{2, 4, 6}));
  std::vector<double> accuracy = r.read_doubles("/eval/dev/accuracy"), f1 = r.read_doubles("/eval/dev/f1");
  ASSERT_EQ(accuracy.size(), 3u);
  ASSERT_EQ(f1.size(), 3u);
  EXPECT_EQ(accuracy[1], 0.6);
  EXPECT_TRUE(std::isnan(accuracy[2]));
  EXPECT_TRUE(std::isnan(f1[0]));
  EXPECT_EQ(f1[2], 0.8);

  EXPECT_EQ(r.children("/decomposition"),
            (std::vector<std::string>{"layers.0.self_attn.q_proj", "layers.1.mlp.down_proj"}));
  const std::string q = "/decomposition/layers.0.self_attn.q_proj/";
  EXPECT_EQ(r.read_ints(q + "step"), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(r.read_doubles(q + "dM_row"), (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(r.read_doubles(q + "dD_col")[1], 2.3);
  size_t rows = 0, cols = 0;
  std::vector<double> m_col = r.read_matrix(q + "m_col", &rows, &cols);
  EXPECT_EQ(rows, 2u);
  EXPECT_EQ(cols, 5u);
  EXPECT_EQ(m_col[5 + 4], 8.0);  // step 4: arange(5) * 2
  std::vector<double> m_row = r.read_matrix(q + "m_row", &rows, &cols);
  EXPECT_EQ(cols, 3u);
  EXPECT_EQ(m_row[2], 3.0);  // step 2: arange(3) + 1
  EXPECT_FALSE(r.exists("/decomposition/layers.1.mlp.down_proj/m_row"));

  EXPECT_EQ(r.final_metrics("dev"), (std::map<std::string, double>{{"accuracy", 0.6}, {"f1", 0.8}}));
  EXPECT_TRUE(r.final_metrics("test").empty());
}

TEST(Recorder, RejectsBadNamesAndWidthChanges) {
  TempDir dir;
  RunRecorder rec = RunRecorder::create((dir / "run.h5").string(), provenance());
  EXPECT_THROW(rec.append_eval("dev/x", 1, {{"acc", 1}}), std::invalid_argument);
  EXPECT_THROW(rec.append_eval("dev", 1, {{"step", 1}}), std::invalid_argument);
  EXPECT_THROW(rec.append_decomposition("a/b", 1, stats(1, 2, 2)), std::invalid_argument);
  rec.append_decomposition("l", 1, stats(1, 3, 4), true);
  EXPECT_THROW(rec.append_decomposition("l", 2, stats(1, 3, 5), true), std::invalid_argument);
  rec.append_decomposition("l", 3, stats(2, 3, 4), false);  // no magnitudes this time: a NaN row
  rec.append_decomposition("l", 4, stats(3, 3, 4), true);
  RunFileReader r(rec.path());
  EXPECT_EQ(r.read_ints("/decomposition/l/step"), (std::vector<int64_t>{1, 3, 4}));  // the bad call left nothing
  EXPECT_EQ(r.read_doubles("/decomposition/l/dM_row").size(), 3u);
  size_t rows = 0, cols = 0;
  std::vector<double> m_col = r.read_matrix("/decomposition/l/m_col", &rows, &cols);
  ASSERT_EQ(rows, 3u);
  EXPECT_TRUE(std::isnan(m_col[4]));
  EXPECT_EQ(m_col[8 + 1], 3.0);  // step 4: arange(4) * 3

  // Magnitudes first recorded at the second row: the first row is NaN-padded.
  rec.append_decomposition("late", 1, stats(1, 2, 2), false);
  rec.append_decomposition("late", 2, stats(1, 2, 2), true);
  std::vector<double> m_row = RunFileReader(rec.path()).read_matrix("/decomposition/late/m_row", &rows, &cols);
  ASSERT_EQ(rows, 2u);
  EXPECT_TRUE(std::isnan(m_row[0]));
  EXPECT_EQ(m_row[3], 2.0);  // arange(2) + 1
}

TEST(Recorder, RefusesToOverwriteACompletedRunUnlessTold) {
  TempDir dir;
  std::string path = (dir / "run.h5").string();
  RunRecorder::create(path, provenance()).finish(RunStatus::completed);
  EXPECT_THROW(RunRecorder::create(path, provenance()), InputError);
  EXPECT_EQ(run_file_status(path), "completed");
  RunRecorder::create(path, provenance(), /*overwrite_completed=*/true).finish(RunStatus::failed);
  EXPECT_EQ(run_file_status(path), "failed");
  RunRecorder::create(path, provenance());  // a failed run is simply replaced
  EXPECT_EQ(run_file_status(path), "running");
  EXPECT_EQ(run_file_status((dir / "none.h5").string()), std::nullopt);
}

TEST(Recorder, ReaderReportsBadFilesAsInputErrors) {
  TempDir dir;
  testing::write_file(dir / "junk.h5", "not hdf5 at all");
  EXPECT_THROW(RunFileReader((dir / "junk.h5").string()), InputError);
  EXPECT_THROW(RunFileReader((dir / "missing.h5").string()), InputError);
  EXPECT_THROW(RunRecorder::open_for_append((dir / "missing.h5").string(), 3), InputError);
}

// Every 97th byte flipped made HDF5 loop for ever. The header's SHA-256 (computed here with OpenSSL's
// command-line tool, not peftlab's code) is checked before HDF5 sees the file: a damaged, truncated or
// header-less file is an InputError within seconds, an intact one reads.
TEST(Recorder, DamagedRunFilesAreRefusedBeforeHdf5ReadsThem) {
  TempDir dir;
  const std::string path = (dir / "run.h5").string();
  {
    RunRecorder rec = RunRecorder::create(path, provenance());
    for (int64_t step = 1; step <= 50; ++step) rec.append_train({step, 1.0 / double(step), 1e-3, 0.5, 100});
    rec.finish(RunStatus::completed);
  }
  const std::string bytes = testing::read_file(path);
  ASSERT_GT(bytes.size(), 512u);
  EXPECT_EQ(bytes.rfind("peftlab run file\nsha256 ", 0), 0u);
  testing::write_file(dir / "body", bytes.substr(512));
  ASSERT_EQ(std::system(("openssl dgst -sha256 -r '" + (dir / "body").string() + "' > '" + (dir / "digest").string() + "'").c_str()), 0);
  const std::string digest = testing::read_file(dir / "digest").substr(0, 64);
  EXPECT_EQ(bytes.substr(17, 7 + 64), "sha256 " + digest);
  EXPECT_EQ(RunFileReader(path).status(), "completed");

  auto problem = [&](const std::string& content) -> std::string {
    const std::string damaged = (dir / "damaged.h5").string();
    testing::write_file(damaged, content);
    const auto started = std::chrono::steady_clock::now();
    try {
      RunFileReader reader(damaged);
      reader.read_doubles("/train/loss");
      return "<accepted>";
    } catch (const InputError& e) {
      EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 5.0);
      return e.problem();
    }
  };
  std::string flipped = bytes;
  for (size_t i = 96; i < flipped.size(); i += 97) flipped[i] = char(~flipped[i]);
  EXPECT_EQ(problem(flipped), "damaged run file: its contents do not match the checksum in its header");
  std::string one = bytes;
  one[one.size() - 1] = char(one.back() ^ 1);
  EXPECT_EQ(problem(one), "damaged run file: its contents do not match the checksum in its header");
  EXPECT_EQ(problem(bytes.substr(0, bytes.size() - 100)), "damaged run file: its contents do not match the checksum in its header");
  EXPECT_EQ(problem(bytes.substr(0, 300)), "damaged run file: 300 bytes, shorter than its 512-byte header");
  EXPECT_EQ(problem(bytes.substr(512)),
            "unreadable run file: no checksummed header (written by an older peftlab?); run it again to rewrite it");
  EXPECT_EQ(problem(bytes), "<accepted>");
}

// A full disk: in a forked child (the limit is per process), writes beyond a file-size limit fail with EFBIG
// as they fail with ENOSPC on a full disk (SIGXFSZ ignored). The failing append is an InputError, the
// recorder's destructor runs without crashing (HDF5 1.10 segfaulted closing a file whose flush had failed),
// and run.h5 keeps every row published before the failure.
TEST(Recorder, FullDiskFailsThePublishCleanlyAndKeepsTheLastWholeFile) {
  TempDir dir;
  const std::string path = (dir / "run.h5").string();
  const std::string report = (dir / "rows.txt").string();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 3;  // no InputError seen
    {
      signal(SIGXFSZ, SIG_IGN);
      RunRecorder rec = RunRecorder::create(path, provenance());
      struct rlimit limit {};
      limit.rlim_cur = limit.rlim_max = 256 * 1024;
      setrlimit(RLIMIT_FSIZE, &limit);
      int64_t written = 0;
      try {
        for (int64_t step = 1; step <= 100000; ++step) {
          rec.append_decomposition("layers.0.q", step, stats(0.5, 256, 256), true);
          written = step;
        }
      } catch (const InputError& e) {
        code = std::string(e.what()).find("cannot write") != std::string::npos ? 0 : 4;
      }
      limit.rlim_cur = limit.rlim_max = RLIM_INFINITY;  // only to write the report
      setrlimit(RLIMIT_FSIZE, &limit);
      std::FILE* f = std::fopen(report.c_str(), "w");
      std::fprintf(f, "%lld\n", static_cast<long long>(written));
      std::fclose(f);
      limit.rlim_cur = limit.rlim_max = 256 * 1024;
      setrlimit(RLIMIT_FSIZE, &limit);
    }  // the recorder's destructor, still over the limit
    _exit(code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the writer died of signal " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const int64_t written = std::stoll(testing::read_file(report));
  EXPECT_GT(written, 0);
  RunFileReader r(path);
  EXPECT_EQ(r.status(), "running");
  size_t rows = 0, cols = 0;
  r.read_matrix("/decomposition/layers.0.q/m_row", &rows, &cols);
  EXPECT_EQ(static_cast<int64_t>(rows), written);
  // No temporary file is left beside it.
  int64_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.is_regular_file();
  EXPECT_EQ(files, 2);  // run.h5 and rows.txt
}

TEST(Recorder, ResumeDropsRowsAfterTheCheckpointStep) {
  TempDir dir;
  std::string path = (dir / "run.h5").string();
  {
    RunRecorder rec = RunRecorder::create(path, provenance());
    for (int64_t step = 10; step <= 50; step += 10) rec.append_train({step, double(step), 0, 0, 0});
    for (int64_t step : {20, 40}) {
      rec.append_eval("dev", step, {{"accuracy", step / 100.0}});
      rec.append_decomposition("l0", step, stats(double(step), 2, 3), true);
    }
    rec.finish(RunStatus::interrupted);
  }
  {
    RunRecorder rec = RunRecorder::open_for_append(path, 30);
    EXPECT_EQ(RunFileReader(path).status(), "running");
    rec.append_train({40, 40.5, 0, 0, 0});
    rec.append_eval("dev", 40, {{"accuracy", 0.45}});
    rec.append_decomposition("l0", 40, stats(41.0, 2, 3), true);
  }
  RunFileReader r(path);
  EXPECT_EQ(r.read_ints("/train/step"), (std::vector<int64_t>{10, 20, 30, 40}));
  EXPECT_EQ(r.read_doubles("/train/loss"), (std::vector<double>{10, 20, 30, 40.5}));
  EXPECT_EQ(r.read_ints("/eval/dev/step"), (std::vector<int64_t>{20, 40}));
  EXPECT_EQ(r.read_doubles("/eval/dev/accuracy"), (std::vector<double>{0.2, 0.45}));
  EXPECT_EQ(r.read_doubles("/decomposition/l0/dM_row"), (std::vector<double>{20, 41}));
  size_t rows = 0, cols = 0;
  std::vector<double> m_row = r.read_matrix("/decomposition/l0/m_row", &rows, &cols);
  EXPECT_EQ(rows, 2u);
  EXPECT_EQ(m_row[2], 41.0);  // second row starts with arange(2) + 41
  EXPECT_EQ(r.status(), "running");
}

// ---- crash safety ----

// Row i of the crash tests: step i, loss 1/(i+1), lr i*1e-4, grad_norm 2i, tokens/s 1000+i.
TrainRow crash_row(int64_t i) { return {i, 1.0 / (i + 1), i * 1e-4, 2.0 * i, 1000.0 + i}; }

// A forked child that appends rows as fast as it can and writes the count of rows whose append returned
// (and so were flushed) to a pipe after each one. It never finishes on its own.
struct Writer {
  pid_t pid = -1;
  int pipe_read = -1;
  int64_t reported = 0;

  explicit Writer(const std::string& path, int64_t pause_us) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid = fork();
    if (pid == 0) {
      close(fds[0]);
      try {
        RunRecorder rec = RunRecorder::create(path, provenance());
        for (int64_t i = 0;; ++i) {
          rec.append_train(crash_row(i));
          if (i % 7 == 0) rec.append_eval("dev", i, {{"accuracy", i / 1000.0}});
          int64_t done = i + 1;
          if (write(fds[1], &done, sizeof done) != sizeof done) _exit(3);
          if (pause_us > 0) usleep(static_cast<useconds_t>(pause_us));
        }
      } catch (...) {
        _exit(4);
      }
    }
    close(fds[1]);
    pipe_read = fds[0];
  }

  // Reads reports until at least `count` rows are flushed (or the child is gone).
  void wait_for(int64_t count) {
    int64_t value;
    while (reported < count && read(pipe_read, &value, sizeof value) == sizeof value) reported = value;
  }

  // SIGKILL, then the last count the child reported before it died.
  int64_t kill_and_drain() {
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    int64_t value;
    while (read(pipe_read, &value, sizeof value) == sizeof value) reported = value;
    close(pipe_read);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself with status " << status;
    return reported;
  }
};

// Every row present must be the row the writer wrote; returns how many complete train rows the file holds.
int64_t check_rows(const std::string& path) {
  RunFileReader r(path);
  EXPECT_EQ(r.status(), "running");
  std::vector<int64_t> steps = r.read_ints("/train/step");
  std::vector<double> loss = r.read_doubles("/train/loss"), tokens = r.read_doubles("/train/tokens_per_s");
  size_t n = std::min({steps.size(), loss.size(), tokens.size()});
  for (size_t i = 0; i < n; ++i) {
    TrainRow expected = crash_row(static_cast<int64_t>(i));
    EXPECT_EQ(steps[i], expected.step);
    EXPECT_EQ(loss[i], expected.loss);
    EXPECT_EQ(tokens[i], expected.tokens_per_s);
  }
  return static_cast<int64_t>(n);
}

TEST(Recorder, FileIsReadableWhileWritingAndAfterSigkill) {
  TempDir dir;
  std::string path = (dir / "run.h5").string();
  Writer writer(path, 200);
  writer.wait_for(20);
  int64_t seen_while_running = check_rows(path);  // the child keeps writing meanwhile
  EXPECT_GE(seen_while_running, 20);
  writer.wait_for(seen_while_running + 20);  // it really did keep going
  int64_t flushed = writer.kill_and_drain();
  EXPECT_GE(check_rows(path), flushed);
  EXPECT_GE(flushed, seen_while_running + 20);
}

// Reads the file while the writer appends without pause, then kills the writer at that random moment (so
// mostly mid-append or mid-flush).
void kill_at_random_moments(int kills) {
  std::mt19937 rng(12345);
  for (int k = 0; k < kills; ++k) {
    TempDir dir;
    std::string path = (dir / "run.h5").string();
    Writer writer(path, 0);
    writer.wait_for(1);
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30000)(rng)));
    int64_t before_read = writer.reported;
    EXPECT_GE(check_rows(path), before_read) << "read racing the writer, kill " << k;
    int64_t flushed = writer.kill_and_drain();
    int64_t held = check_rows(path);
    EXPECT_GE(held, flushed) << "kill " << k;
    RunFileReader r(path);
    std::vector<int64_t> eval_steps = r.read_ints("/eval/dev/step");
    for (size_t i = 0; i < eval_steps.size(); ++i) EXPECT_EQ(eval_steps[i], int64_t(7 * i));
  }
}

// The price of the flush discipline: one H5Fflush per append. Prints the measurement for docs/run-file.md.
TEST(Recorder, SlowAppendCostStaysSmall) {
  TempDir dir;
  RunRecorder rec = RunRecorder::create((dir / "run.h5").string(), provenance());
  const int rows = 2000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < rows; ++i) rec.append_train(crash_row(i));
  double train_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / rows;
  DecompositionStats s = stats(1.0, 4096, 4096);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) rec.append_decomposition("layers.0.self_attn.q_proj", i, s, true);
  double decomposition_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / 100;
  std::printf("append_train: %.1f us per row; append_decomposition with 4096+4096 magnitudes: %.1f us\n", train_us,
              decomposition_us);
  EXPECT_LT(train_us, 5000.0);
  EXPECT_EQ(RunFileReader(rec.path()).read_ints("/train/step").size(), size_t(rows));
}

// Known to fail now and then on an idle machine (a kill mid-flush can leave metadata HDF5 cannot read back): kept
// under the slow label until the recorder is made crash-consistent; see the issue notes.
TEST(Recorder, SlowSurvivesSigkillAtRandomMoments) { kill_at_random_moments(8); }
TEST(Recorder, SlowSurvivesSigkillAtManyRandomMoments) { kill_at_random_moments(200); }

}  // namespace
}  // namespace peftlab

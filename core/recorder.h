// The HDF5 run file: one per run, everything a paper needs (schema: docs/run-file.md).
//
//   RunProvenance p;  p.run_id = "sst2-lora-s0"; p.method = "lora"; p.method_label = "lora-r8"; ...
//   RunRecorder rec = RunRecorder::create(out_dir / "run.h5", p);       // status "running"
//   rec.append_train({step, loss, lr, grad_norm, tokens_per_s});         // every log step
//   rec.append_eval("dev", step, {{"accuracy", 0.91}});                  // every eval
//   rec.append_decomposition("layers.0.self_attn.q_proj", step, decomposition_stats(w, w0), true);
//   rec.set_final("dev", {{"accuracy", 0.91}});
//   rec.finish(RunStatus::completed);                                     // end_time, peak memory, status
// Resume: RunRecorder::open_for_append(path, checkpoint_step) drops rows logged after the checkpoint.
//
// Crash safety: the recorder keeps its working file in memory (HDF5's core driver) and, after every
// append_*, set_* and finish call, publishes it: the file's image is written to a temporary file beside
// run.h5 and renamed over it. A rename is atomic, so run.h5 is always a complete HDF5 file holding every row
// whose call returned (a SIGKILL mid-publish leaves only a temporary file; resume reads run.h5 back into
// memory). A full disk fails the publish with an InputError and leaves run.h5 at its last whole state; HDF5
// itself never meets the write error (closing a file after a failed flush crashes HDF5 1.10). Readers open run.h5 at any time, during the run or after a crash; the status of a run
// that did not finish stays "running". hold_publishing() / publish() group many appends (one copy for the
// decomposition rows of every layer). One RunRecorder per file, used from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/decomposition.h"

namespace H5 {
class H5File;
}

namespace peftlab {

inline constexpr int64_t kRunFileSchemaVersion = 1;

enum class RunStatus { running, completed, failed, interrupted, diverged };
std::string to_string(RunStatus status);

// Root attributes written by create(). versions and data_checksums are JSON texts.
struct RunProvenance {
  std::string run_id, method, method_label, task;
  int64_t seed = 0;
  std::string spec;  // resolved YAML text
  std::string git_commit, versions = "{}", host;
  int64_t threads = 0;
  int64_t trainable_params = 0, total_params = 0;
  std::string data_checksums = "{}";
  std::string headline_metric;  // name of the eval metric the table reports, e.g. "accuracy"
};

struct TrainRow {
  int64_t step = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
};

using AttributeValue = std::variant<std::string, double, int64_t>;

class RunRecorder {
 public:
  // Starts a new file (status "running", start_time now). An existing file is replaced, except one whose
  // status is "completed": that throws InputError unless overwrite_completed.
  static RunRecorder create(const std::string& path, const RunProvenance& provenance, bool overwrite_completed = false);
  // Continues an existing file after a resume from the checkpoint at `resume_step`: rows with step >
  // resume_step are removed from every appendable group, status goes back to "running".
  static RunRecorder open_for_append(const std::string& path, int64_t resume_step);
  // Removes the evaluation rows with step >= `step` (a run resumed after its last step evaluates again).
  void drop_eval_rows_from(int64_t step);

  RunRecorder(RunRecorder&&) noexcept;
  RunRecorder& operator=(RunRecorder&&) noexcept;
  ~RunRecorder();  // closes the file; the status stays what it was (still "running" if finish was not called)

  // Root attributes: provenance additions and free-form extras. Replaces an attribute of the same name.
  void set_attribute(const std::string& key, const std::string& value);
  void set_attribute(const std::string& key, const char* value) { set_attribute(key, std::string(value)); }
  void set_attribute(const std::string& key, double value);
  void set_attribute(const std::string& key, int64_t value);

  void append_train(const TrainRow& row);
  // A metric absent from this row (or first seen later) is NaN in the rows where it is missing, so every
  // dataset of /eval/<split> has one row per call.
  void append_eval(const std::string& split, int64_t step, const std::map<std::string, double>& metrics);
  // `layer` is a module path such as "layers.0.self_attn.q_proj" (no '/'). with_magnitudes also appends
  // stats.m_row and stats.m_col as rows of the 2-D datasets m_row (steps x out) and m_col (steps x in);
  // rows of a step recorded without magnitudes are NaN, so those datasets stay aligned with `step`.
  // A width different from earlier rows throws std::invalid_argument before anything is written.
  void append_decomposition(const std::string& layer, int64_t step, const DecompositionStats& stats,
                            bool with_magnitudes = false);
  // /final/<split> attributes metric -> value (replaces earlier values of the same names).
  void set_final(const std::string& split, const std::map<std::string, double>& metrics);
  // /final_predictions/<split>/{prediction,reference}: the final evaluation's per-example predictions and the
  // references they were scored against (compressed), for paired comparisons over examples. Same lengths.
  void set_final_predictions(const std::string& split, const std::vector<double>& predictions,
                             const std::vector<double>& references);
  // Writes end_time (now), peak_memory_bytes (this process's peak RSS) and status.
  void finish(RunStatus status);
  // Until publish(), calls write the working file only (run.h5 keeps the last published state).
  void hold_publishing() { hold_ = true; }
  // Flushes the working file and publishes it as run.h5; ends a hold.
  void publish();

  const std::string& path() const { return path_; }

 private:
  RunRecorder(std::string path, std::unique_ptr<H5::H5File> file);
  void flush();  // flush, and publish unless held
  std::string path_;  // the published run file
  std::unique_ptr<H5::H5File> file_;  // the working file (in memory)
  bool hold_ = false, dirty_ = false;
};

// Read access to a run file (tests, `run` skipping finished runs). The file is verified first
// (verify_run_file). Opening retries briefly so that a reader racing the writer's flush still gets in. Any
// failure is an InputError naming the file.
class RunFileReader {
 public:
  explicit RunFileReader(const std::string& path);
  RunFileReader(RunFileReader&&) noexcept;
  ~RunFileReader();

  std::string status() const { return attribute_string("status"); }
  bool has_attribute(const std::string& key) const;
  std::vector<std::string> attribute_names() const;
  AttributeValue attribute(const std::string& key) const;
  std::string attribute_string(const std::string& key) const;  // throws if not a string
  double attribute_double(const std::string& key) const;       // numbers of either type
  int64_t attribute_int(const std::string& key) const;         // throws if not an integer

  bool exists(const std::string& object_path) const;                  // "/eval/dev", "/train/loss"
  std::vector<std::string> children(const std::string& group) const;  // sorted names
  std::vector<double> read_doubles(const std::string& dataset) const;  // 1-D, any numeric type
  std::vector<int64_t> read_ints(const std::string& dataset) const;    // 1-D integer
  // 2-D dataset row-major, with its shape.
  std::vector<double> read_matrix(const std::string& dataset, size_t* rows, size_t* cols) const;
  std::map<std::string, double> final_metrics(const std::string& split) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<H5::H5File> file_;
};

// Checks the run file's header (its first 512 bytes: "peftlab run file", then the SHA-256 and length of
// the HDF5 bytes that follow) against the rest of the file, before HDF5 parses any of it: a damaged file is an
// InputError within the time it takes to hash it, never a hang inside HDF5. RunFileReader calls it first.
void verify_run_file(const std::string& path);

// The status of the run file at `path`, or nullopt when there is none. Bad files throw InputError.
std::optional<std::string> run_file_status(const std::string& path);

}  // namespace peftlab

#include "experiments/runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/decomposition.h"
#include "core/errors.h"
#include "core/model_io.h"
#include "experiments/checkpoint.h"
#include "experiments/training_step.h"
#include "experiments/evaluation.h"
#include "experiments/progress.h"
#include "experiments/schedule.h"
#include "experiments/run_model.h"
#include "experiments/task_model.h"
#include "experiments/validation.h"
#include "methods/adaptation.h"
#include "methods/registry.h"
#include "tasks/task.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

// The signal that asked the run to stop (0: none).
std::atomic<int> stop_signal{0};

extern "C" void on_stop_signal(int signal) { stop_signal.store(signal); }

// Holds an exclusive flock on <run dir>/.lock for the run's lifetime. The kernel drops it when the process
// dies, so a stale lock never blocks.
class RunLock {
 public:
  explicit RunLock(const fs::path& dir) {
    fs::create_directories(dir);
    const fs::path file = dir / ".lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd_ < 0) throw InputError(dir.string(), "cannot create the run's lock file (is the folder writable?)");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw InputError(dir.string(), "another peftlab process is running this run (lock held)");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0 && ::write(fd_, pid.data(), pid.size()) < 0) spdlog::debug("lock: cannot write pid");
  }
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

std::string read_git_commit() {
  std::error_code ec;
  const fs::path head = fs::path(PEFTLAB_SOURCE_DIR) / ".git" / "HEAD";
  std::ifstream in(head);
  std::string line;
  if (!std::getline(in, line)) return "unknown";
  if (line.rfind("ref: ", 0) != 0) return line;
  std::ifstream ref(fs::path(PEFTLAB_SOURCE_DIR) / ".git" / line.substr(5));
  std::string commit;
  return std::getline(ref, commit) ? commit : "unknown";
}

std::string host_name() {
  char buffer[256] = {0};
  return gethostname(buffer, sizeof(buffer) - 1) == 0 ? buffer : "unknown";
}

class Trainer {
 public:
  Trainer(const RunSpec& run, const RunnerOptions& options)
      : run_(run), options_(options), dir_(run.dir), dp_(options.parallel ? *options.parallel : single_process_),
        identity_(run_identity(run.resolved_yaml)) {}

  RunStatus run() {
    // Rank 0 owns the run folder: the lock, the run file, checkpoints and predictions.
    std::optional<RunLock> lock;
    if (dp_.is_main()) lock.emplace(dir_);
    setup();
    try {
      return train();
    } catch (...) {
      // Whatever ended the run (a peer process that died, a full disk, a bug), its file must not go on
      // reading "running" as if a process still worked on it.
      mark_failed();
      throw;
    }
  }

 private:
  void setup() {
    // Model, tokenizer, task and method, each from its section of the spec.
    RunModel built = build_run_model(run_);
    tokenizer_ = built.tokenizer;
    task_ = std::move(built.task);
    method_ = built.method;
    model_ = built.model;
    model_->backbone->set_activation_checkpointing(run_.train.activation_checkpointing);
    if (method_->trains_base_weights()) remember_pretrained_weights();

    // Data: tokenised once (cached), then batched deterministically from the "data" stream.
    train_examples_ = tokenized_split(*task_, "train", *tokenizer_);
    if (train_examples_.empty()) throw InputError(run_.id, "the training split is empty");
    if (run_.eval.validation > 0) carve_validation();
    auto splits = run_.eval.splits.empty() ? task_->eval_splits() : run_.eval.splits;
    for (const auto& split : splits) eval_sets_.push_back(load_eval_split(*task_, split, *tokenizer_, run_.eval.max_examples));
    BatcherOptions batch_options;
    batch_options.batch_size = run_.train.batch_size;
    batch_options.seed = stream_seed(run_.seed, "data");
    batch_options.pad_id = tokenizer_->pad_or_eos_id();
    batch_options.label_kind = task_->label_kind();
    batch_options.drop_last = false;
    batcher_ = std::make_unique<Batcher>(train_examples_, batch_options);

    const int64_t steps_per_epoch =
        (batcher_->batches_per_epoch() + run_.train.grad_accum - 1) / run_.train.grad_accum;
    total_steps_ = run_.train.max_steps > 0 ? run_.train.max_steps : run_.train.epochs * steps_per_epoch;
    warmup_steps_ = run_.train.warmup_steps > 0
                        ? run_.train.warmup_steps
                        : static_cast<int64_t>(run_.train.warmup_ratio * static_cast<double>(total_steps_));
    build_optimizer();
    // The same starting point on every process (adapters are seeded alike; this makes it a guarantee).
    dp_.broadcast_from_main(optimizer_parameters(*optimizer_));
  }

  // Moves a seeded hold-out of the training examples into validation_examples_.
  void carve_validation() {
    const auto reported = run_.eval.splits.empty() ? task_->eval_splits() : run_.eval.splits;
    if (std::find(reported.begin(), reported.end(), kValidationSplit) != reported.end())
      throw InputError(run_.sources->primary(), "eval.validation: the task reports a split named 'validation' already; "
                                                "evaluate another split or leave eval.validation out");
    const int64_t count = validation_count(run_.eval.validation, train_examples_.size(), run_.sources->primary());
    validation_indices_ = hold_out_indices(train_examples_, count, static_cast<uint64_t>(run_.eval.validation_seed),
                                           task_->kind() == TaskKind::Classification);
    std::vector<TokenizedExample> kept;
    size_t next = 0;
    for (size_t i = 0; i < train_examples_.size(); ++i) {
      if (next < validation_indices_.size() && validation_indices_[next] == i) {
        validation_examples_.push_back(std::move(train_examples_[i]));
        ++next;
      } else {
        kept.push_back(std::move(train_examples_[i]));
      }
    }
    train_examples_ = std::move(kept);
  }

  bool has_validation() const { return !validation_examples_.empty(); }

  // The validation loss, recorded as a row of /eval/validation.
  double evaluate_validation(int64_t step, Progress& progress) {
    const double loss = validation_loss(*model_, validation_examples_, run_.eval.batch_size, tokenizer_->pad_or_eos_id(),
                                        task_->label_kind());
    if (recorder_) recorder_->append_eval(kValidationSplit, step, {{"loss", loss}});
    progress.message(fmt::format("step {} validation loss={:.4f}", step, loss));
    return loss;
  }

  void remember_pretrained_weights() {
    torch::NoGradGuard no_grad;
    for (const auto& slot : model_->backbone->slots()) pretrained_[slot->slot_name()] = slot->weight.detach().clone();
  }

  void build_optimizer() {
    optimizer_ = make_optimizer(*model_, run_.train);
    for (const auto& p : optimizer_parameters(*optimizer_)) trainable_params_ += p.numel();
    for (const auto& p : model_->parameters()) total_params_ += p.numel();
  }

  RunProvenance provenance() const {
    RunProvenance p;
    p.run_id = run_.id;
    p.method = run_.method_name;
    p.method_label = run_.method_label;
    p.task = run_.task_label;
    p.seed = run_.seed;
    p.spec = run_.resolved_yaml;
    p.git_commit = read_git_commit();
    nlohmann::json versions = {{"peftlab", PEFTLAB_VERSION}, {"libtorch", TORCH_VERSION}};
    p.versions = versions.dump();
    p.host = host_name();
    p.threads = torch::get_num_threads();
    p.trainable_params = trainable_params_;
    p.total_params = total_params_;
    auto task_provenance = task_->provenance();
    nlohmann::json checksums = nlohmann::json::object();
    for (const auto& file : task_provenance.files) checksums[file.path.string()] = file.sha256;
    checksums[tokenizer_->path().string()] = tokenizer_->checksum();
    p.data_checksums = checksums.dump();
    p.headline_metric = task_->headline_metric();
    return p;
  }

  void open_recorder(int64_t resume_step) {
    if (!dp_.is_main()) return;  // the other processes record nothing
    const std::string file = (dir_ / "run.h5").string();
    if (resume_step >= 0) {
      recorder_ = std::make_unique<RunRecorder>(RunRecorder::open_for_append(file, resume_step));
    } else {
      recorder_ = std::make_unique<RunRecorder>(RunRecorder::create(file, provenance(), /*overwrite_completed=*/true));
      auto task_provenance = task_->provenance();
      recorder_->set_attribute("task_name", task_provenance.name);
      recorder_->set_attribute("task_version", static_cast<int64_t>(task_provenance.version));
      recorder_->set_attribute("task_options", task_provenance.options);
      recorder_->set_attribute("task_source", task_provenance.source);
      recorder_->set_attribute("task_source_sha256", task_provenance.source_sha256);
      recorder_->set_attribute("metric_directions", metric_directions());
      recorder_->set_attribute("headline_split", task_->headline_split());
      recorder_->set_attribute("experiment", run_.experiment);
      recorder_->set_attribute("world_size", static_cast<int64_t>(dp_.world_size()));
      if (!run_.tuning.empty()) recorder_->set_attribute("tuning", run_.tuning);
      recorder_->set_attribute("selection", selection_protocol());
      if (has_validation()) {
        recorder_->set_attribute("validation_size", static_cast<int64_t>(validation_examples_.size()));
        recorder_->set_attribute("validation_seed", run_.eval.validation_seed);
        recorder_->set_attribute("validation_indices_sha256", indices_checksum(validation_indices_));
        recorder_->set_attribute("selection_split", std::string(kValidationSplit));
      }
    }
  }

  // Which weights the final numbers come from, in words, for the table's footnote.
  std::string selection_protocol() const {
    if (has_validation())
      return fmt::format("{} by validation loss ({} examples held out of the training split)",
                         run_.train.select_best ? "best checkpoint" : "final weights; early stopping",
                         validation_examples_.size());
    if (run_.train.select_best)
      return fmt::format("best checkpoint on {} {}, the split reported (selected and reported on one split)",
                         task_->headline_split(), task_->headline_metric());
    return "final weights";
  }

  // Each metric the task reports, and whether higher or lower is better: {"accuracy": "higher", ...}. The
  // analysis marks best cells by it.
  std::string metric_directions() const {
    nlohmann::json directions = nlohmann::json::object();
    for (const auto& split : task_->eval_splits())
      for (const auto& metric : task_->metrics(split)) directions[metric.name] = metric.higher_is_better ? "higher" : "lower";
    return directions.dump();
  }

  void record_decomposition(int64_t step) {
    if (!recorder_) return;
    torch::NoGradGuard no_grad;
    recorder_->hold_publishing();  // every layer's row, then one publish
    for (auto slot : model_->backbone->slots()) {
      torch::Tensor reference;
      if (slot->has_adapter()) reference = slot->pretrained_weight();  // W0, also where the method rewrote it
      else if (auto it = pretrained_.find(slot->slot_name()); it != pretrained_.end()) reference = it->second;
      else continue;
      recorder_->append_decomposition(slot->slot_name(), step, decomposition_stats(slot->effective_weight(), reference),
                                      run_.record.magnitudes);
    }
    recorder_->publish();
  }

  // Evaluates every eval split (and the task's summary); returns the headline value (on the headline split,
  // else the first split that has the metric).
  using SplitMetrics = std::map<std::string, std::map<std::string, double>>;

  // Evaluates every eval split (and the task's summary) and records the rows; `headline` gets the value on
  // the headline split (else the first split that has the metric).
  SplitMetrics evaluate_all(int64_t step, Progress& progress, double& headline,
                            std::map<std::string, SplitPredictions>* kept = nullptr) {
    SplitMetrics by_split = evaluate_splits(*model_, *task_, eval_sets_, *tokenizer_, run_.eval.batch_size, kept);
    headline = std::numeric_limits<double>::quiet_NaN();
    for (const auto& [split, metrics] : by_split) {
      if (recorder_) recorder_->append_eval(split, step, metrics);
      auto it = metrics.find(task_->headline_metric());
      if (it != metrics.end() && (std::isnan(headline) || split == task_->headline_split())) headline = it->second;
    }
    progress.message(fmt::format("step {} {} {}={:.4f}", step, task_->headline_split(), task_->headline_metric(), headline));
    return by_split;
  }

  // Predictions on the task's unlabelled splits (GLUE test) into <run>/predictions/, each file whole or absent.
  void write_predictions() {
    const auto splits = task_->prediction_splits();
    if (!dp_.is_main() || !run_.eval.write_predictions || splits.empty()) return;
    const fs::path folder = dir_ / "predictions";
    fs::create_directories(folder);
    for (const auto& split : splits) {
      EvalSplit data = load_eval_split(*task_, split, *tokenizer_);
      auto result = evaluate_split(*model_, *task_, data, *tokenizer_, run_.eval.batch_size);
      auto path = task_->write_predictions(folder, split, data.examples, result.predictions);
      spdlog::info("{}: {} predictions written to {}", run_.id, split, path.string());
    }
  }

  bool higher_is_better() const {
    for (const auto& metric : task_->metrics(task_->headline_split()))
      if (metric.name == task_->headline_metric()) return metric.higher_is_better;
    return true;
  }

  RunStatus train() {
    const fs::path checkpoint = dir_ / "checkpoint.pt", best = dir_ / "best.pt";
    TrainingState state;
    bool resumed = false;
    if (options_.resume && fs::exists(checkpoint) && fs::exists(dir_ / "run.h5")) {
      if (dp_.is_main()) require_same_run_file();
      state = load_checkpoint(checkpoint, *model_, *optimizer_, identity_);
      batcher_->seek(state.data);
      resumed = true;
    } else {
      // A fresh run: what an earlier run left in the folder goes first, so that no later --resume, eval or
      // export can take it for this run's.
      if (dp_.is_main())
        for (const char* name : {"checkpoint.pt", "best.pt", "adapter.pt"}) fs::remove(dir_ / name);
      // Each process draws its own dropout masks (rank 0's stream is the one-process stream).
      torch::manual_seed(stream_seed(run_.seed, dp_.rank() == 0 ? "dropout" : fmt::format("dropout-rank{}", dp_.rank())));
    }
    open_recorder(resumed ? state.step : -1);
    // Killed after its last step: the final evaluation runs again, so its earlier rows go.
    if (resumed && recorder_ && training_done(state)) recorder_->drop_eval_rows_from(state.step);

    Progress progress(run_.id, total_steps_, run_.record.log_every, options_.progress);
    if (!resumed && run_.record.decomposition_every > 0) record_decomposition(0);
    const bool better_high = has_validation() ? false : higher_is_better();  // validation: a loss
    model_->train();
    RunStatus status = RunStatus::completed;
    while (!training_done(state)) {
      if (dp_.any(stop_signal.load() != 0)) {
        status = RunStatus::interrupted;
        break;
      }
      const auto started = std::chrono::steady_clock::now();
      const double lr = run_.train.lr * lr_multiplier(run_.train.schedule, state.step, warmup_steps_, total_steps_);
      for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
      const StepResult step = training_step(*model_, *optimizer_, [this] { return batcher_->next(); }, run_.train, dp_);
      const double loss = step.loss, grad_norm = step.grad_norm;
      const int64_t tokens = step.tokens;
      if (!step.stepped) {
        progress.message(fmt::format("step {}: loss {} / gradient norm {} is not finite; stopping", state.step, loss, grad_norm));
        status = RunStatus::diverged;
        break;
      }
      ++state.step;
      state.data = batcher_->position();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const double tokens_per_s = seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0;
      progress.update(state.step, loss, tokens_per_s);
      if (recorder_ && (state.step % run_.record.log_every == 0 || state.step == total_steps_))
        recorder_->append_train({state.step, loss, lr, grad_norm, tokens_per_s});
      if (run_.record.decomposition_every > 0 && state.step % run_.record.decomposition_every == 0)
        record_decomposition(state.step);
      if (run_.train.eval_every > 0 && state.step % run_.train.eval_every == 0 && state.step < total_steps_) {
        double value = 0;
        if (has_validation()) value = evaluate_validation(state.step, progress);  // the reported splits wait
        else evaluate_all(state.step, progress, value);
        const bool improved = state.best_step < 0 || (better_high ? value > state.best_metric : value < state.best_metric);
        if (improved) {
          state.best_metric = value, state.best_step = state.step, state.evals_without_improvement = 0;
          if (run_.train.select_best && dp_.is_main()) save_weights(best, *model_, identity_);
        } else {
          ++state.evals_without_improvement;
        }
        if (run_.train.early_stopping_patience > 0 && state.evals_without_improvement >= run_.train.early_stopping_patience) {
          progress.message(fmt::format("early stopping at step {} (best at step {})", state.step, state.best_step));
          checkpoint_now(checkpoint, state);
          break;
        }
      }
      if (run_.train.save_every > 0 && state.step % run_.train.save_every == 0) checkpoint_now(checkpoint, state);
    }
    progress.finish();
    if (status != RunStatus::completed) {
      if (status == RunStatus::interrupted) checkpoint_now(checkpoint, state);
      if (recorder_) recorder_->finish(status);
      return status;
    }
    checkpoint_now(checkpoint, state);
    // The final evaluation: the last weights, or the best evaluation's when select_best says so (only if it
    // beats the last weights' own evaluation, which is computed here).
    // With a validation split the choice reads validation alone, and the reported splits are evaluated once,
    // on the chosen weights.
    double final_value = 0;
    std::map<std::string, SplitPredictions> final_predictions;  // per example, for paired comparisons
    SplitMetrics final_metrics;
    if (has_validation()) final_value = evaluate_validation(state.step, progress);
    else final_metrics = evaluate_all(state.step, progress, final_value, &final_predictions);
    const bool best_is_better = state.best_step >= 0 &&
                                (better_high ? state.best_metric > final_value : state.best_metric < final_value);
    const bool use_best = run_.train.select_best && best_is_better && fs::exists(best);
    if (use_best) load_weights(best, *model_, identity_);
    if (has_validation() && recorder_)  // the chosen weights' validation loss: what a tuned sweep selects on
      recorder_->set_final(kValidationSplit, {{"loss", use_best ? state.best_metric : final_value}});
    if (has_validation()) {
      final_metrics = evaluate_all(state.step, progress, final_value, &final_predictions);
    } else if (use_best) {  // only then do the final metrics differ from the evaluation just made
      final_predictions.clear();
      final_metrics = evaluate_splits(*model_, *task_, eval_sets_, *tokenizer_, run_.eval.batch_size, &final_predictions);
    }
    if (!recorder_) return RunStatus::completed;
    recorder_->set_attribute("selected_step", use_best ? state.best_step : state.step);
    save_weights(dir_ / "adapter.pt", *model_, identity_);
    for (const auto& [split, metrics] : final_metrics) recorder_->set_final(split, metrics);
    recorder_->hold_publishing();  // the predictions of every split, then one publish
    for (const auto& [split, kept] : final_predictions)
      recorder_->set_final_predictions(split, kept.predictions, kept.references);
    recorder_->publish();
    write_predictions();
    recorder_->finish(RunStatus::completed);
    return RunStatus::completed;
  }

  // All steps taken, or stopped early (also true of a checkpoint written when it stopped early).
  bool training_done(const TrainingState& state) const {
    return state.step >= total_steps_ || (run_.train.early_stopping_patience > 0 &&
                                          state.evals_without_improvement >= run_.train.early_stopping_patience);
  }

  // Rank 0 writes the checkpoint (every process holds the same weights and optimizer state).
  void checkpoint_now(const fs::path& file, const TrainingState& state) {
    if (dp_.is_main()) save_checkpoint(file, *model_, *optimizer_, state, identity_);
  }

  void mark_failed() noexcept {
    if (!recorder_) return;
    try {
      recorder_->finish(RunStatus::failed);
    } catch (...) {  // the run file keeps its last whole state; the first error is the one reported
    }
  }

  // A resumed run continues the run file of the same run only (the checkpoint is checked on loading).
  void require_same_run_file() const {
    const std::string file = (dir_ / "run.h5").string();
    RunFileReader reader(file);
    if (!reader.has_attribute("spec") || reader.attribute_string("spec") != run_.resolved_yaml)
      throw InputError(file, "records another run (its spec differs from this one's); start afresh without --resume");
  }

  const RunSpec& run_;
  RunnerOptions options_;
  fs::path dir_;
  DataParallel single_process_;
  const DataParallel& dp_;
  std::shared_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Task> task_;
  std::shared_ptr<Method> method_;
  TaskModel model_{nullptr};
  std::map<std::string, torch::Tensor> pretrained_;
  std::vector<TokenizedExample> train_examples_;
  std::vector<EvalSplit> eval_sets_;
  std::unique_ptr<Batcher> batcher_;
  std::vector<TokenizedExample> validation_examples_;
  std::vector<size_t> validation_indices_;
  static constexpr const char* kValidationSplit = "validation";
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<RunRecorder> recorder_;
  int64_t total_steps_ = 0, warmup_steps_ = 0, trainable_params_ = 0, total_params_ = 0;
  std::string identity_;  // run_identity of this run, written into every checkpoint and weights file
};

}  // namespace

void request_stop() { stop_signal.store(SIGINT); }

int stop_signal_received() { return stop_signal.load(); }

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

RunStatus execute_run(const RunSpec& run, const RunnerOptions& options) {
  // train.threads > 0 is this run's LibTorch thread count; 0 keeps the process's (--threads or its share).
  const int process_threads = torch::get_num_threads();
  if (run.train.threads > 0) torch::set_num_threads(int(run.train.threads));
  struct Restore {
    int threads;
    ~Restore() { torch::set_num_threads(threads); }
  } restore{process_threads};
  Trainer trainer(run, options);
  return trainer.run();
}

}  // namespace peftlab

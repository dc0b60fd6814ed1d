// peftlab run: every run of a spec (or one shard of them), sequentially or as parallel jobs, skipping runs
// that already completed; then the comparison table.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <spdlog/spdlog.h>

#include <iostream>
#include <map>

#include "analysis/python_driver.h"
#include "core/errors.h"
#include "core/recorder.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "experiments/run_checks.h"
#include "experiments/run_model.h"
#include "experiments/runner.h"
#include "experiments/smoke_profile.h"
#include "experiments/sweep.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::string spec;
  std::vector<std::string> overrides;
  std::string out;
  int jobs = 0, nproc = 1;  // jobs 0: the runner decides (auto_jobs)
  bool resume = false, force = false, no_table = false, smoke = false;
  std::string shard;
  std::vector<std::string> only;  // run ids (used by --jobs for its child processes)
};

std::vector<RunSpec> selected_runs(const RunArgs& args) {
  auto runs = load_runs(args.spec, args.overrides);
  if (!args.out.empty())
    for (auto& run : runs) run.dir = (fs::path(args.out) / run.id).string();
  if (!args.shard.empty()) {
    Shard shard = parse_shard(args.shard);
    runs = select_shard(runs, shard.index, shard.count);
  }
  if (!args.only.empty()) {
    std::vector<RunSpec> kept;
    for (auto& run : runs)
      if (std::find(args.only.begin(), args.only.end(), run.id) != args.only.end()) kept.push_back(run);
    for (const auto& id : args.only)
      if (std::none_of(kept.begin(), kept.end(), [&](const RunSpec& run) { return run.id == id; }))
        throw InputError(args.spec, fmt::format("--only {}: no run of this sweep has that id (e.g. {})", id,
                                                runs.empty() ? std::string("none") : runs.front().id));
    runs = kept;
  }
  return runs;
}

bool already_completed(const RunSpec& run) {
  auto status = run_file_status((fs::path(run.dir) / "run.h5").string());
  return status && *status == "completed";
}

// The command line of a child process that runs the given run ids with `threads` threads.
std::vector<std::string> child_command(const RunArgs& args, const std::vector<std::string>& ids, int threads) {
  std::vector<std::string> argv = {"/proc/self/exe", "--threads", std::to_string(threads), "run", args.spec, "--no-table",
                                   "--jobs", "1"};
  for (const auto& o : args.overrides) argv.insert(argv.end(), {"--set", o});
  if (!args.out.empty()) argv.insert(argv.end(), {"--out", args.out});
  if (args.resume) argv.push_back("--resume");
  if (args.force) argv.push_back("--force");
  for (const auto& id : ids) argv.insert(argv.end(), {"--only", id});
  return argv;
}

int wait_all(const std::vector<pid_t>& children) {
  int worst = 0;
  for (pid_t child : children) worst = std::max(worst, wait_child(child));
  return worst;
}

// Models this small spend a step in per-operation overhead and memory-bound attention rather than in matrix
// products, so a second thread buys them little (2 threads: 58 s for a quickstart run, 1 thread: 54 s);
// several such runs go faster side by side, one thread each.
constexpr int64_t kSmallModelParameters = 10'000'000;

// --jobs left out: runs of small models on the CPU go in parallel, one per core; everything else one after
// another with all the threads.
int auto_jobs(const std::vector<RunSpec>& pending) {
  if (pending.size() < 2 || global_options().threads > 0 || hardware_threads() < 2) return 1;
  std::map<std::string, int64_t> by_path;  // a sweep's runs mostly share one model file: read its config once
  for (const auto& run : pending) {
    if (run.model.device != "cpu" && run.model.device != "auto") return 1;
    const bool from_file = !run.model.path.empty();
    auto known = from_file ? by_path.find(run.model.path) : by_path.end();
    const int64_t parameters = known != by_path.end() ? known->second : model_spec_config(run.model)->parameter_count();
    if (from_file) by_path[run.model.path] = parameters;
    if (parameters >= kSmallModelParameters) return 1;
  }
  const int jobs = std::min<int>(hardware_threads(), int(pending.size()));
  spdlog::info("{} runs of models under {}M parameters: {} at a time, one thread each (--jobs 1: one after another)",
               pending.size(), kSmallModelParameters / 1'000'000, jobs);
  return jobs;
}

// A TCP port free on this machine now (the kernel's choice for port 0), for the rendezvous of --nproc.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw std::runtime_error("cannot find a free TCP port for the data-parallel rendezvous");
  const int port = ntohs(address.sin_port);
  close(fd);
  return port;
}

// --nproc N: N processes of this command on this machine, one data-parallel group, threads divided.
int run_data_parallel(const RunArgs& args, const std::vector<RunSpec>& pending) {
  const int threads = std::max(1, (global_options().threads > 0 ? global_options().threads : hardware_threads()) / args.nproc);
  std::vector<std::string> ids;
  for (const auto& run : pending) ids.push_back(run.id);
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> children;
  for (int rank = 0; rank < args.nproc; ++rank) {
    auto command = child_command(args, ids, threads);
    if (global_options().quiet || rank > 0) command.insert(command.begin() + 1, "-q");
    children.push_back(start_child(command, {"RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(args.nproc),
                                             "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port}));
  }
  return wait_all(children);
}

// Runs the pending runs in `jobs` child processes, round-robin, each with its share of the threads.
int run_in_parallel(const RunArgs& args, const std::vector<RunSpec>& pending) {
  const int jobs = std::min<int>(args.jobs, static_cast<int>(pending.size()));
  const int threads = std::max(1, (global_options().threads > 0 ? global_options().threads : hardware_threads()) / jobs);
  std::vector<pid_t> children;
  for (int j = 0; j < jobs; ++j) {
    std::vector<std::string> ids;
    for (size_t k = j; k < pending.size(); k += jobs) ids.push_back(pending[k].id);
    auto command = child_command(args, ids, threads);
    if (global_options().quiet) command.insert(command.begin() + 1, "-q");
    children.push_back(start_child(command));
  }
  return wait_all(children);
}

int run_sequentially(const std::vector<RunSpec>& pending, const RunnerOptions& options) {
  int failures = 0;
  for (const auto& run : pending) {
    spdlog::info("run {} -> {}", run.id, run.dir);
    RunStatus status = execute_run(run, options);
    if (status == RunStatus::interrupted) {
      const int signal = stop_signal_received() > 0 ? stop_signal_received() : SIGINT;
      spdlog::warn("run {} interrupted by {} (checkpoint written; continue with --resume)", run.id,
                   signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : fmt::format("signal {}", signal));
      return 128 + signal;  // the shell's convention for a process ended by that signal
    }
    if (status != RunStatus::completed) {
      spdlog::warn("run {} ended with status {}", run.id, to_string(status));
      ++failures;
    }
  }
  return failures > 0 ? 1 : 0;
}

std::function<int()> setup_run(CLI::App& cmd) {
  auto args = std::make_shared<RunArgs>();
  cmd.add_option("spec", args->spec, "Experiment spec (YAML)")->required();
  cmd.add_option("--set", args->overrides, "Override a spec key: a.b=value (repeatable)");
  cmd.add_option("--out", args->out, "Output folder (default: the spec's output.dir)");
  cmd.add_option("--jobs,-j", args->jobs, "Runs in parallel on this machine (threads divided among them; default: one per core "
                 "for models under 10M parameters on the CPU without --threads, else 1)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--nproc", args->nproc,
                 "Train each run data-parallel in N processes on this machine (c10d Gloo; threads divided). "
                 "An outside launcher sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT instead")
      ->check(CLI::Range(1, 256));
  cmd.add_flag("--resume", args->resume, "Continue interrupted runs from their last checkpoint");
  cmd.add_flag("--force", args->force, "Run again even runs that completed");
  cmd.add_option("--shard", args->shard, "i/n: only the i-th of n slices of the sweep (Slurm array jobs)");
  cmd.add_option("--only", args->only, "Only the run with this id (repeatable)");
  cmd.add_flag("--no-table", args->no_table, "Do not print the comparison table at the end");
  cmd.add_flag("--smoke", args->smoke,
               "The smoke profile: stories260K, two steps, one example per split, one seed (docs/spec.md)");
  return [args] {
    if (args->smoke) {  // the profile's --sets first, the command line's own win; children get them all
      auto overrides = smoke_overrides(args->spec);
      overrides.insert(overrides.end(), args->overrides.begin(), args->overrides.end());
      args->overrides = overrides;
      args->smoke = false;
    }
    auto runs = selected_runs(*args);
    check_runs(runs);  // what validate checks, before any run starts
    std::vector<RunSpec> pending;
    for (const auto& run : runs) {
      if (!args->force && already_completed(run)) spdlog::info("skip {} (completed)", run.id);
      else pending.push_back(run);
    }
    install_stop_handlers();
    DataParallel parallel = DataParallel::from_environment();
    if (args->jobs == 0) args->jobs = parallel.enabled() || args->nproc > 1 ? 1 : auto_jobs(pending);
    if ((parallel.enabled() || args->nproc > 1) && args->jobs > 1)
      throw InputError("--jobs", "runs in parallel (--jobs) and data-parallel runs (--nproc, WORLD_SIZE) do not mix");
    if (parallel.enabled() && args->nproc > 1)
      throw InputError("--nproc", "WORLD_SIZE is already set by a launcher; leave --nproc out");
    RunnerOptions options;
    options.resume = args->resume;
    options.threads = global_options().threads;
    options.progress = !global_options().quiet && parallel.is_main();
    options.parallel = &parallel;
    int code = 0;
    if (!pending.empty()) {
      if (args->nproc > 1) code = run_data_parallel(*args, pending);
      else if (args->jobs > 1) code = run_in_parallel(*args, pending);
      else code = run_sequentially(pending, options);
    }
    if (code > 128 || args->no_table || runs.empty() || !parallel.is_main()) return code;
    std::vector<std::string> dirs;
    for (const auto& run : runs) dirs.push_back(run.dir);
    std::vector<std::string> table = {"table", "--format", "md", "--"};
    table.insert(table.end(), dirs.begin(), dirs.end());
    std::cout << "\n";
    std::cout.flush();
    int table_code = run_analysis(table);
    return code != 0 ? code : table_code;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("run", "Train and evaluate every run of an experiment spec", setup_run);

}  // namespace peftlab::cli

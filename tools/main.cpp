// peftlab: entry point. Parses the verb, applies global options, and maps failures to exit statuses:
// 0 success, 2 bad input (one line `error: <file>[:<line>]: <what>`), 1 internal failure.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "core/errors.h"
#include "core/runtime.h"
#include "experiments/registries.h"
#include "tools/cli.h"

namespace peftlab::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

std::vector<Verb>& verbs() {
  static std::vector<Verb> all;
  return all;
}

bool register_verb(Verb verb) {
  verbs().push_back(std::move(verb));
  return true;
}

}  // namespace peftlab::cli

int main(int argc, char** argv) {
  using namespace peftlab;
  connect_spec_to_registries();
  CLI::App app{"peftlab: compare parameter-efficient fine-tuning methods on benchmarks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(PEFTLAB_VERSION));
  auto& global = cli::global_options();
  app.add_option("--threads", global.threads,
                 fmt::format("LibTorch intra-op threads (default: all cores; at most {} per core)", kThreadsPerCore));
  app.add_option("--device", global.device, "cpu, cuda, cuda:N or auto (cuda: `bench` only for now)");
  app.add_flag("-q,--quiet", global.quiet, "Only warnings and errors on stderr");

  auto sorted = cli::verbs();
  std::sort(sorted.begin(), sorted.end(), [](const cli::Verb& a, const cli::Verb& b) { return a.name < b.name; });
  std::function<int()> action;
  for (const auto& verb : sorted) {
    CLI::App* cmd = app.add_subcommand(verb.name, verb.help);
    auto run = verb.setup(*cmd);
    cmd->callback([&action, run] { action = run; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: usage: " << e.what() << "\n";
    return 2;
  }

  try {
    spdlog::set_level(global.quiet ? spdlog::level::warn : spdlog::level::info);
    spdlog::set_pattern("%^%l%$: %v");
    check_threads(global.threads, "--threads");
    // `peftlab bench` measures on the GPU when asked; every other verb trains and evaluates on the CPU for now.
    const auto chosen = app.get_subcommands();
    if (!chosen.empty() && chosen.front()->get_name() == "bench") parse_device(global.device);
    else compute_device(global.device, "--device");
    set_threads(global.threads);
    return action ? action() : 0;
  } catch (const InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that cannot be created, read or written (a file where a folder should be, no
    // permission, a full disk): bad input, named by its path.
    std::cerr << "error: " << e.path1().string() << ": " << e.code().message() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 1;
  }
}

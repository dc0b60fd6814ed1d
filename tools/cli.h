// The `peftlab` command line: each verb lives in its own tools/cmd_<verb>.cpp and registers itself here
// with a static PEFTLAB_REGISTER_VERB, so adding a verb never touches main.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace peftlab::cli {

// Options every verb shares.
struct GlobalOptions {
  int threads = 0;  // 0: all cores
  std::string device = "cpu";
  bool quiet = false;
};
GlobalOptions& global_options();

struct Verb {
  std::string name;
  std::string help;
  // Adds the verb's options to `cmd` and returns the action to run when the verb is chosen. The action
  // returns the process exit status.
  std::function<std::function<int()>(CLI::App& cmd)> setup;
};

std::vector<Verb>& verbs();
bool register_verb(Verb verb);

}  // namespace peftlab::cli

#define PEFTLAB_CONCAT_INNER(a, b) a##b
#define PEFTLAB_CONCAT(a, b) PEFTLAB_CONCAT_INNER(a, b)
#define PEFTLAB_REGISTER_VERB(name, help, setup_fn) \
  static const bool PEFTLAB_CONCAT(peftlab_verb_registered_, __COUNTER__) = ::peftlab::cli::register_verb({name, help, setup_fn})

// `peftlab tasks [--show NAME]`: every task a spec can name, with the file that defines it (a task file under
// tasks/, compiled in, or the C++ source of a task YAML cannot say); --show prints a shipped task file.
#include <fmt/format.h>

#include <iostream>

#include "core/errors.h"
#include "core/suggest.h"
#include "tasks/task.h"
#include "tasks/task_file.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct TasksArgs {
  std::string show;
};

int list_tasks(const TasksArgs& args) {
  if (!args.show.empty()) {
    const std::string source = task_source(args.show);
    for (const auto& [file, text] : shipped_task_files())
      if (file == source) {
        std::cout << text;
        return 0;
      }
    if (source.empty()) input_error("--show", "{}", unknown_name_message("task", args.show, task_names()));
    input_error("--show", "task {} is defined in C++ ({}), not by a task file", args.show, source);
  }
  std::cout << fmt::format("{:<22} {}\n", "task", "source");
  for (const auto& name : task_names()) std::cout << fmt::format("{:<22} {}\n", name, task_source(name));
  return 0;
}

std::function<int()> setup_tasks(CLI::App& cmd) {
  auto args = std::make_shared<TasksArgs>();
  cmd.add_option("--show", args->show, "Print the task file of a shipped task");
  return [args] { return list_tasks(*args); };
}

PEFTLAB_REGISTER_VERB("tasks", "List the tasks and the files that define them", setup_tasks);

}  // namespace
}  // namespace peftlab::cli

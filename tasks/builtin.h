// The built-in tasks' factories, called by the registry on first use. (Self-registering statics would be
// dropped by the linker: the tasks live in a static library and nothing else references their objects.)
#pragma once

#include <map>
#include <string>

#include "tasks/task.h"

namespace peftlab::builtin {

// The task files under tasks/ compiled into the program (GLUE): tasks/task_file.cpp.
void add_shipped_tasks(std::map<std::string, TaskFactory>& registry);
void add_commonsense_tasks(std::map<std::string, TaskFactory>& registry);
void add_lm_task(std::map<std::string, TaskFactory>& registry);
void add_custom_task(std::map<std::string, TaskFactory>& registry);

}  // namespace peftlab::builtin

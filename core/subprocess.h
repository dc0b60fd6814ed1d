// Child processes: the one place peftlab starts and waits for them (`run --jobs/--nproc` workers, the
// analysis script, `bench` cases and its Python reference). posix_spawnp, so a program that cannot be
// started is an error here rather than a child that exits 127.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace peftlab {

// Starts argv[0] (searched on PATH when it has no '/') with this process's environment plus `extra_env`
// ("NAME=value", later entries win over inherited ones of the same name). stdout goes to `stdout_fd` when it
// is >= 0, else it is inherited; stderr is always inherited. Throws std::system_error when it cannot start.
pid_t start_child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
                  int stdout_fd = -1);

// Waits for a child started by start_child (retrying on EINTR); returns its exit code, or 128 + the signal
// that ended it, as a shell reports it. (No peak memory here: Linux carries the parent's high-water mark
// across exec into a child's ru_maxrss, so a child that measures memory reports its own VmHWM.)
int wait_child(pid_t pid);

struct ChildOutput {
  int status = 0;  // as wait_child's
  std::string stdout_text;
};

// Runs argv to completion with its stdout captured (stderr passes through).
ChildOutput run_capturing_stdout(const std::vector<std::string>& argv);

}  // namespace peftlab

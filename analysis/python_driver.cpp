#include "analysis/python_driver.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <system_error>

#include "core/errors.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

constexpr const char* kScript = "peftlab_analysis.py";

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

fs::path analysis_dir() {
  if (const char* env = std::getenv("PEFTLAB_ANALYSIS_DIR"); env != nullptr && *env != '\0') {
    if (!fs::exists(fs::path(env) / kScript))
      throw InputError(env, std::string("PEFTLAB_ANALYSIS_DIR has no ") + kScript);
    return env;
  }
  const fs::path candidates[] = {fs::path(PEFTLAB_SOURCE_DIR) / "analysis",
                                 executable_dir() / ".." / "share" / "peftlab" / "analysis"};
  for (const fs::path& dir : candidates)
    if (fs::exists(dir / kScript)) return dir;
  throw InputError(kScript, "analysis script not found (set PEFTLAB_ANALYSIS_DIR to the folder holding it)");
}

std::string analysis_python() {
  if (const char* env = std::getenv("PEFTLAB_PYTHON"); env != nullptr && *env != '\0') return env;
  if (access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return "python3";
}

int run_analysis(const std::vector<std::string>& args) {
  const std::string python = analysis_python();
  const std::string script = (analysis_dir() / kScript).string();
  std::vector<std::string> argv_strings = {python, script};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  constexpr int kExecFailed = 127;
  pid_t pid = fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    execvp(python.c_str(), argv.data());
    _exit(kExecFailed);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  int code = WEXITSTATUS(status);
  if (code == kExecFailed)
    throw InputError(python, "cannot run the analysis interpreter (install python3, python3-h5py, "
                             "python3-matplotlib; or set PEFTLAB_PYTHON)");
  return code;
}

}  // namespace peftlab

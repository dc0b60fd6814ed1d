#include "analysis/python_driver.h"

#include <unistd.h>

#include <cstdlib>
#include <system_error>

#include "core/errors.h"
#include "core/subprocess.h"
#include "methods/registry.h"

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
  // Tables and figures list methods in the registry's display order.
  std::string order;
  for (const auto& name : method_names()) order += (order.empty() ? "" : ",") + name;
  setenv("PEFTLAB_METHOD_ORDER", order.c_str(), 1);
  try {
    return wait_child(start_child(argv_strings));
  } catch (const std::system_error&) {
    throw InputError(python, "cannot run the analysis interpreter (install python3, python3-h5py, "
                             "python3-matplotlib; or set PEFTLAB_PYTHON)");
  }
}

}  // namespace peftlab

// Runs a Python reference script (tests/reference/) for the parity suites. ctest runs every test in its own
// process, so a suite of many parametrized cases would otherwise run the same script once per case: the
// script's output folder is kept under the system temp folder, named by a hash of the script folder's
// Python files, the interpreter, the script's name and the arguments, and reused by every later process
// while that hash holds. A folder is published whole (written elsewhere, then renamed) so a parallel test
// never reads half of one.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/checksum.h"
#include "tests/test_support.h"

namespace peftlab::testing {

inline std::string python_interpreter() {
  if (const char* env = std::getenv("PEFTLAB_PYTHON"); env != nullptr && *env != '\0') return env;
  if (access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";  // Debian's, with python3-torch
  return "python3";
}

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `script arguments` with the reference interpreter; returns (exit status, stdout and stderr).
inline std::pair<int, std::string> run_python(const std::filesystem::path& script, const std::string& arguments) {
  const std::string command =
      shell_quote(python_interpreter()) + " " + shell_quote(script.string()) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  return {pclose(pipe), output};
}

// The output folder of `script arguments --out <folder>`, run once per content hash.
class ReferenceRun {
 public:
  ReferenceRun(const std::filesystem::path& script, const std::string& arguments) {
    namespace fs = std::filesystem;
    std::string key = python_interpreter() + "\n" + script.filename().string() + " " + arguments + "\n";
    for (const auto& entry : fs::directory_iterator(script.parent_path()))
      if (entry.path().extension() == ".py") key += entry.path().filename().string() + "\n" + read_file(entry.path());
    folder_ = fs::temp_directory_path() / ("peftlab-reference-" + sha256_bytes(key).substr(0, 20));
    if (fs::exists(folder_ / "complete")) return;
    std::random_device random;
    const fs::path scratch = folder_.string() + fmt::format(".partial-{}-{:x}", getpid(), random());
    fs::create_directories(scratch);
    std::tie(status_, output_) = run_python(script, arguments + " --out " + shell_quote(scratch.string()));
    std::error_code ignored;
    if (status_ == 0) {
      write_file(scratch / "complete", "");
      fs::rename(scratch, folder_, ignored);  // fails when a parallel process published first: theirs is used
    }
    fs::remove_all(scratch, ignored);
    if (status_ == 0 && !fs::exists(folder_ / "complete")) status_ = -1, output_ = "no reference folder published";
  }
  // Empty when the script ran; otherwise its status and output.
  std::string failure() const {
    if (status_ == 0) return "";
    return fmt::format("the reference script failed (status {}); it needs python3 with torch and numpy "
                       "(PEFTLAB_PYTHON picks the interpreter):\n{}", status_, output_);
  }
  const std::filesystem::path& folder() const { return folder_; }
  // A case's subfolder, as the parity scripts lay them out with --all.
  std::filesystem::path folder(const std::string& name, const std::string& dtype) const { return folder_ / name / dtype; }

 private:
  std::filesystem::path folder_;
  int status_ = 0;
  std::string output_;
};

}  // namespace peftlab::testing

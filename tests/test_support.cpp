#include "tests/test_support.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/data_root.h"
#include "experiments/registries.h"

namespace peftlab::testing {

namespace fs = std::filesystem;

// Every test sees the spec parser as `peftlab` does: connected to the method and task registries.
[[maybe_unused]] const bool kSpecConnectedToRegistries = (connect_spec_to_registries(), true);

static std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CliResult run_cli(const std::vector<std::string>& args) {
  std::string command = shell_quote(PEFTLAB_BIN);
  for (const auto& a : args) command += " " + shell_quote(a);
  command += " 2>&1";
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int status = pclose(pipe);
  if (WIFEXITED(status)) result.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.status = 128 + WTERMSIG(status);
  return result;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("peftlab-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("test helper: cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path tokenizer_data(const std::string& relative) { return data_path("tokenizers/" + relative); }
fs::path stories260k_bin() { return data_path("models/stories260K/stories260K.bin"); }
fs::path stories260k_tokenizer() { return data_path("models/stories260K/tok512.model"); }

}  // namespace peftlab::testing

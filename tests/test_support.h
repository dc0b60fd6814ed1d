// Shared helpers for the test suite.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace peftlab::testing {

struct CliResult {
  int status = -1;     // exit status, or 128+signal when killed
  std::string output;  // stdout and stderr together
};

// Runs the built `peftlab` binary with `args` (each quoted for the shell).
CliResult run_cli(const std::vector<std::string>& args);

// A fresh, empty directory under the system temp folder, removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& bytes);
std::string read_file(const std::filesystem::path& path);

// A file of the data root's tokenizers/ folder ("gpt2/vocab.json").
std::filesystem::path tokenizer_data(const std::string& relative);

// The real stories260K files from the data root.
std::filesystem::path stories260k_bin();
std::filesystem::path stories260k_tokenizer();

}  // namespace peftlab::testing

// Shared by the libFuzzer targets: file-reading code is fuzzed through a real file, and a clean
// InputError is the expected answer to bad input. Anything else that escapes (another exception, a
// sanitizer report, a signal) is a crash that libFuzzer records.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/errors.h"

namespace peftlab::fuzz {

// A per-process scratch folder, on /dev/shm when there is one (fsync is free on tmpfs).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                     : std::filesystem::temp_directory_path();
    auto d = base / ("peftlab-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::error_code ec; std::filesystem::remove_all(scratch_dir(), ec); });
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();  // the harness itself is broken: not a finding about the code under test
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Writes the input to `name` in the scratch folder and runs `consume(path)`; InputError is swallowed.
template <typename Consume>
int run_on_file(const std::uint8_t* data, std::size_t size, const std::string& name, Consume&& consume) {
  const auto path = scratch_dir() / name;
  write_bytes(path, data, size);
  try {
    consume(path);
  } catch (const InputError&) {
  }
  return 0;
}

}  // namespace peftlab::fuzz

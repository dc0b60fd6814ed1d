// Fuzzes SafetensorsFile: open (header validation) and load every tensor. A file that loads must also
// survive a round trip through write_safetensors with identical dtypes, shapes, bytes and metadata.
#include <cstring>

#include "core/safetensors.h"
#include "fuzz/fuzz_support.h"

using namespace peftlab;

static void check_round_trip(const SafetensorsFile& file, const std::map<std::string, torch::Tensor>& tensors) {
  std::vector<std::pair<std::string, torch::Tensor>> ordered(tensors.begin(), tensors.end());
  for (const auto& [name, t] : ordered)
    if (name.empty()) return;  // the reader accepts an empty name; the writer refuses one by design
  const auto copy = fuzz::scratch_dir() / "copy.safetensors";
  write_safetensors(copy, ordered, file.metadata());
  SafetensorsFile again(copy);
  if (again.names() != file.names() || again.metadata() != file.metadata()) std::abort();
  for (const auto& [name, t] : ordered) {
    torch::Tensor u = again.load(name);
    if (u.scalar_type() != t.scalar_type() || u.sizes() != t.sizes()) std::abort();
    // Bytes, not values: NaN payloads must survive too.
    if (t.numel() > 0 && std::memcmp(u.data_ptr(), t.data_ptr(), t.nbytes()) != 0) std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run_on_file(data, size, "input.safetensors", [](const std::filesystem::path& path) {
    SafetensorsFile file(path);
    auto tensors = file.load_all();
    check_round_trip(file, tensors);
  });
}

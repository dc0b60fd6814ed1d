// Fuzzes read_safetensors_index: the input is model.safetensors.index.json in a folder that holds one
// shard (model-00001-of-00001.safetensors) and a sibling folder's file one level up (../outside.safetensors).
// Every accepted shard must resolve inside the folder.
#include "core/safetensors.h"
#include "fuzz/fuzz_support.h"

using namespace peftlab;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path folder = [] {
    fs::path f = fuzz::scratch_dir() / "model";
    fs::create_directories(f);
    const std::uint8_t empty_file[] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    fuzz::write_bytes(f / "model-00001-of-00001.safetensors", empty_file, sizeof empty_file);
    fuzz::write_bytes(fuzz::scratch_dir() / "outside.safetensors", empty_file, sizeof empty_file);
    return f;
  }();
  return fuzz::run_on_file(data, size, "model/model.safetensors.index.json", [](const fs::path& path) {
    SafetensorsIndex index = read_safetensors_index(path);
    const fs::path inside = fs::weakly_canonical(folder);
    for (const auto& shard : index.shards) {
      fs::path resolved = fs::weakly_canonical(shard);
      auto rel = resolved.lexically_relative(inside);
      if (rel.empty() || *rel.begin() == "..") std::abort();  // escaped the folder
    }
  });
}

#include "core/data_root.h"

#include <cstdlib>

namespace peftlab {

namespace fs = std::filesystem;

fs::path data_root() {
  if (const char* env = std::getenv("PEFTLAB_DATA"); env != nullptr && *env != '\0') return fs::path(env);
  if (fs::is_directory("data")) return fs::path("data");
  if (fs::is_directory("../shared/data")) return fs::path("../shared/data");
  // Tests and tools started from a build folder still find the shared data beside the source tree.
  fs::path beside_source = fs::path(PEFTLAB_SOURCE_DIR) / ".." / "shared" / "data";
  if (fs::is_directory(beside_source)) return beside_source.lexically_normal();
  return fs::path("data");
}

fs::path data_path(const std::string& relative) { return data_root() / relative; }

}  // namespace peftlab

// Where real data lives: $PEFTLAB_DATA, else ./data, else ../shared/data (docs/spec.md says how paths resolve).
#pragma once

#include <filesystem>
#include <string>

namespace peftlab {

std::filesystem::path data_root();

// `relative` under the data root, e.g. data_path("models/stories260K/stories260K.bin").
std::filesystem::path data_path(const std::string& relative);

}  // namespace peftlab

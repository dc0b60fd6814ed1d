// SHA-256 of files and byte strings (hex), for cache keys and provenance; the same digests as sha256sum.
#pragma once

#include <filesystem>
#include <string>

namespace peftlab {

std::string sha256_file(const std::filesystem::path& path);
std::string sha256_bytes(const std::string& bytes);

}  // namespace peftlab

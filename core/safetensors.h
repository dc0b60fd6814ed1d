// Safetensors files (the Hugging Face weight format), read and written by hand.
//
// Layout: an 8-byte little-endian header length N, N bytes of a JSON object
//   {name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
// then the data buffer; offsets are relative to the buffer start.
//
// Every file is treated as coming from a stranger: the constructor validates the whole header against the
// file size (bounded header, offsets inside the buffer, shape x dtype size == byte length, no overlaps, no
// duplicate keys) before any tensor is read, and every problem is an InputError naming the file.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace peftlab {

// The largest header accepted (the reference implementation's limit).
constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsTensorInfo {
  std::string dtype;                 // as stored: "F32", "BF16", ...
  torch::ScalarType scalar_type;     // the matching LibTorch type
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range in the data buffer, [begin, end)
  std::uint64_t numel() const;
  std::uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  // Opens and validates the header; keeps the file open so later loads read the file that was validated.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  const SafetensorsTensorInfo& info(const std::string& name) const;  // InputError if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // In its stored dtype, contiguous, on the CPU, owning its memory. InputError if absent or unreadable
  // (also when a BOOL tensor holds a byte other than 0 or 1).
  torch::Tensor load(const std::string& name) const;
  std::map<std::string, torch::Tensor> load_all() const;

 private:
  void parse_header(const std::string& header);
  void check_overlaps() const;

  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t data_start_ = 0;  // 8 + header length
  std::uint64_t data_size_ = 0;   // bytes after the header
  std::map<std::string, SafetensorsTensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any device; copied to CPU, contiguous) in the given order, atomically: a temporary file
// in the same folder, fsync, rename. The header is padded with spaces to a multiple of 8 bytes, as the
// reference implementation does. Supported dtypes: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL.
// Duplicate or empty names, "__metadata__" as a name, or an unsupported dtype: std::invalid_argument
// (a caller bug). An unwritable folder or a full disk: InputError(path, ...).
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The dtype name for a LibTorch type ("F32", ...), or std::nullopt when safetensors/peftlab has none.
std::optional<std::string> safetensors_dtype_name(torch::ScalarType type);

// A sharded checkpoint: model.safetensors.index.json {"metadata": {...}, "weight_map": {tensor: shard}}.
struct SafetensorsIndex {
  std::filesystem::path index_path;
  std::map<std::string, std::filesystem::path> weight_map;  // tensor name -> shard file (folder / shard)
  std::vector<std::filesystem::path> shards;                 // distinct shard files, sorted
  std::optional<std::uint64_t> total_size;                   // metadata.total_size when present
};

// Validates the JSON shape, that every shard is a relative path without ".." that names an existing
// regular file in the index's folder (symbolic links are followed, as the Hugging Face cache uses them).
SafetensorsIndex read_safetensors_index(const std::filesystem::path& index_path);

}  // namespace peftlab

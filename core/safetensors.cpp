#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/atomic_file.h"
#include "core/errors.h"

// Tensor bytes are copied straight between the file (little-endian) and memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace peftlab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct DtypeSpec {
  const char* name;
  torch::ScalarType type;
  std::uint64_t size;
};

constexpr DtypeSpec kDtypes[] = {
    {"BOOL", torch::kBool, 1},  {"U8", torch::kUInt8, 1},     {"I8", torch::kInt8, 1},
    {"I16", torch::kInt16, 2},  {"I32", torch::kInt32, 4},    {"I64", torch::kInt64, 8},
    {"F16", torch::kHalf, 2},   {"BF16", torch::kBFloat16, 2}, {"F32", torch::kFloat, 4},
    {"F64", torch::kDouble, 8},
};
constexpr const char* kSupportedDtypes = "BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64";
// Valid in the format, but without a LibTorch 1.13 type or a use here.
constexpr const char* kKnownUnsupportedDtypes[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2"};

const DtypeSpec* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::uint64_t dtype_size(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.size;
  throw std::logic_error("safetensors: no size for dtype");
}

// Names and values from a stranger's file can be huge; messages show at most this much of them.
std::string quote_name(const std::string& s) {
  constexpr size_t kMax = 120;
  if (s.size() <= kMax) return "'" + s + "'";
  return "'" + s.substr(0, kMax) + "...'";
}

// A short description of a JSON value for messages: numbers as written, anything else by its type.
std::string describe(const json& value) {
  if (value.is_number()) return value.dump();
  if (value.is_string()) return "the string " + quote_name(value.get<std::string>());
  return std::string("a JSON ") + value.type_name();
}

std::string strip_json_exception_prefix(const std::string& what) {
  // "[json.exception.parse_error.101] parse error at ..." -> "parse error at ..."
  auto pos = what.find("] ");
  return (what.rfind("[json.exception.", 0) == 0 && pos != std::string::npos) ? what.substr(pos + 2) : what;
}

// Parses JSON, rejecting duplicate keys in any object (nlohmann would silently keep the last one, and a
// checkpoint naming one tensor twice is ambiguous). `what` names the document in messages ("header").
json parse_json_strict(const std::string& text, const std::string& file, const std::string& what) {
  std::vector<std::set<std::string>> keys_per_open_object;
  std::optional<std::string> duplicate;
  auto check_keys = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: keys_per_open_object.emplace_back(); break;
      case json::parse_event_t::object_end: keys_per_open_object.pop_back(); break;
      case json::parse_event_t::key:
        if (!keys_per_open_object.back().insert(parsed.get<std::string>()).second && !duplicate)
          duplicate = parsed.get<std::string>();
        break;
      default: break;
    }
    return true;
  };
  json parsed;
  try {
    parsed = json::parse(text, check_keys);
  } catch (const json::exception& e) {
    input_error(file, "{} is not valid JSON: {}", what, strip_json_exception_prefix(e.what()));
  }
  if (duplicate) input_error(file, "{} has the key {} more than once", what, quote_name(*duplicate));
  return parsed;
}

// A JSON value that must be a non-negative integer; `field` names it in messages ("shape[1]").
std::uint64_t require_unsigned(const json& value, const std::string& file, const std::string& tensor,
                               const std::string& field) {
  if (!value.is_number_unsigned())
    input_error(file, "tensor {}: {} is {}, expected a non-negative integer", quote_name(tensor), field,
                describe(value));
  return value.get<std::uint64_t>();
}

const json& require_field(const json& entry, const char* field, const std::string& file,
                          const std::string& tensor) {
  auto it = entry.find(field);
  if (it == entry.end()) input_error(file, "tensor {}: missing field '{}'", quote_name(tensor), field);
  return *it;
}

std::string shape_text(const std::vector<std::int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

SafetensorsTensorInfo parse_tensor_entry(const std::string& name, const json& entry, std::uint64_t data_size,
                                         const std::string& file) {
  if (!entry.is_object())
    input_error(file, "tensor {}: entry is {}, expected an object", quote_name(name), describe(entry));
  SafetensorsTensorInfo info;

  const json& dtype = require_field(entry, "dtype", file, name);
  if (!dtype.is_string())
    input_error(file, "tensor {}: dtype is {}, expected a string", quote_name(name), describe(dtype));
  info.dtype = dtype.get<std::string>();
  const DtypeSpec* spec = find_dtype(info.dtype);
  if (spec == nullptr) {
    bool known = std::any_of(std::begin(kKnownUnsupportedDtypes), std::end(kKnownUnsupportedDtypes),
                             [&](const char* d) { return info.dtype == d; });
    input_error(file, "tensor {}: {} dtype {} (supported: {})", quote_name(name), known ? "unsupported" : "unknown",
                quote_name(info.dtype), kSupportedDtypes);
  }
  info.scalar_type = spec->type;

  const json& shape = require_field(entry, "shape", file, name);
  if (!shape.is_array())
    input_error(file, "tensor {}: shape is {}, expected an array of non-negative integers", quote_name(name),
                describe(shape));
  // LibTorch computes contiguous strides as products of dimensions (zeros counted as 1), in int64.
  std::uint64_t stride_product = 1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    std::uint64_t dim = require_unsigned(shape[i], file, name, fmt::format("shape[{}]", i));
    if (dim == 0) has_zero = true;
    if (__builtin_mul_overflow(stride_product, std::max<std::uint64_t>(dim, 1), &stride_product) ||
        stride_product > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      input_error(file, "tensor {}: shape {} is too large (its element count overflows 64 bits)", quote_name(name),
                  shape.dump());
    info.shape.push_back(static_cast<std::int64_t>(dim));
  }
  std::uint64_t numel = has_zero ? 0 : stride_product;

  const json& offsets = require_field(entry, "data_offsets", file, name);
  if (!offsets.is_array() || offsets.size() != 2)
    input_error(file, "tensor {}: data_offsets is {}, expected an array of two non-negative integers",
                quote_name(name), offsets.is_array() ? fmt::format("an array of {} values", offsets.size())
                                                 : describe(offsets));
  info.begin = require_unsigned(offsets[0], file, name, "data_offsets[0]");
  info.end = require_unsigned(offsets[1], file, name, "data_offsets[1]");
  if (info.begin > info.end)
    input_error(file, "tensor {}: data_offsets [{}, {}] begin after they end", quote_name(name), info.begin, info.end);
  if (info.end > data_size)
    input_error(file, "tensor {}: data_offsets [{}, {}] end past the data buffer ({} bytes)", quote_name(name),
                info.begin, info.end, data_size);

  std::uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(numel, spec->size, &expected_bytes) || expected_bytes != info.nbytes())
    input_error(file, "tensor {}: data_offsets [{}, {}] hold {} bytes, but shape {} of {} needs {} x {} bytes",
                quote_name(name), info.begin, info.end, info.nbytes(), shape_text(info.shape), info.dtype, numel,
                spec->size);
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& file) {
  if (!value.is_object())
    input_error(file, "__metadata__ is {}, expected an object of strings", describe(value));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      input_error(file, "__metadata__ value for key {} is {}, expected a string", quote_name(key), describe(v));
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

// Reads exactly `size` bytes at `offset`; the file was validated, so a short read means it changed since.
void read_exact(int fd, std::uint64_t offset, void* out, std::uint64_t size, const std::string& file) {
  auto* dst = static_cast<char*>(out);
  while (size > 0) {
    size_t chunk = static_cast<size_t>(std::min<std::uint64_t>(size, 1u << 30));
    ssize_t n = ::pread(fd, dst, chunk, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) input_error(file, "read failed at byte {}: {}", offset, std::strerror(errno));
    if (n == 0) input_error(file, "file ended at byte {} while reading (was it changed while open?)", offset);
    dst += n;
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::uint64_t>(n);
  }
}

}  // namespace

std::uint64_t SafetensorsTensorInfo::numel() const {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);  // validated: cannot overflow
  return n;
}

std::optional<std::string> safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return std::string(d.name);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------- reading

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  const std::string file = path.string();
  // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) input_error(file, "cannot open: {}", std::strerror(errno));
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) input_error(file, "cannot stat: {}", std::strerror(errno));
    if (S_ISDIR(st.st_mode)) input_error(file, "is a directory, expected a safetensors file");
    if (!S_ISREG(st.st_mode)) input_error(file, "is not a regular file");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size < 8)
      input_error(file, "file is {} bytes, too short for a safetensors file (the header length alone is 8)",
                  file_size);

    unsigned char length_bytes[8];
    read_exact(fd_, 0, length_bytes, 8, file);
    std::uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];
    if (header_size > kSafetensorsMaxHeaderBytes)
      input_error(file, "header length {} exceeds the limit of {} bytes", header_size, kSafetensorsMaxHeaderBytes);
    if (header_size > file_size - 8)
      input_error(file, "header length {} exceeds the {} bytes that follow the length field", header_size,
                  file_size - 8);
    data_start_ = 8 + header_size;
    data_size_ = file_size - data_start_;

    std::string header(static_cast<size_t>(header_size), '\0');
    read_exact(fd_, 8, header.data(), header_size, file);
    parse_header(header);
    check_overlaps();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (fd_ >= 0) ::close(fd_);
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), data_start_(other.data_start_),
      data_size_(other.data_size_), tensors_(std::move(other.tensors_)), metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    data_start_ = other.data_start_;
    data_size_ = other.data_size_;
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

void SafetensorsFile::parse_header(const std::string& header) {
  const std::string file = path_.string();
  json root = parse_json_strict(header, file, "header");
  if (!root.is_object()) input_error(file, "header is {}, expected a JSON object", describe(root));
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") metadata_ = parse_metadata(entry, file);
    else tensors_.emplace(name, parse_tensor_entry(name, entry, data_size_, file));
  }
}

void SafetensorsFile::check_overlaps() const {
  // Empty tensors occupy no bytes and cannot overlap anything.
  std::vector<std::pair<const std::string*, const SafetensorsTensorInfo*>> ranges;
  for (const auto& [name, info] : tensors_)
    if (info.nbytes() > 0) ranges.emplace_back(&name, &info);
  std::stable_sort(ranges.begin(), ranges.end(),  // stable: the same file always gives the same message
            [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  const std::pair<const std::string*, const SafetensorsTensorInfo*>* furthest = nullptr;  // largest end so far
  for (const auto& r : ranges) {
    if (furthest != nullptr && r.second->begin < furthest->second->end)
      input_error(path_.string(), "tensors {} [{}, {}] and {} [{}, {}] overlap", quote_name(*furthest->first),
                  furthest->second->begin, furthest->second->end, quote_name(*r.first), r.second->begin, r.second->end);
    if (furthest == nullptr || r.second->end > furthest->second->end) furthest = &r;
  }
  // The data buffer is the tensors back to back: a hole or bytes after the last tensor are refused, as the
  // reference reader refuses them (bytes no tensor owns are damage, or data hidden from the header).
  std::uint64_t end = 0;
  for (const auto& r : ranges) {
    if (r.second->begin != end)
      input_error(path_.string(), "tensor {} starts at byte {} of the data, but the tensors before it end at byte {}: "
                  "a hole of {} bytes (the format requires contiguous data)",
                  quote_name(*r.first), r.second->begin, end, r.second->begin - end);
    end = r.second->end;
  }
  if (end != data_size_)
    input_error(path_.string(), "{} bytes of data follow the last tensor, which ends at byte {} (the format requires "
                "the tensors to fill the data)", data_size_ - end, end);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& entry : tensors_) out.push_back(entry.first);
  return out;
}

const SafetensorsTensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) input_error(path_.string(), "no tensor named {}", quote_name(name));
  return it->second;
}

torch::Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsTensorInfo& ti = info(name);
  if (fd_ < 0) throw std::logic_error("SafetensorsFile::load on a moved-from object");
  torch::Tensor tensor = torch::empty(ti.shape, torch::TensorOptions().dtype(ti.scalar_type));
  if (ti.nbytes() == 0) return tensor;
  read_exact(fd_, data_start_ + ti.begin, tensor.data_ptr(), ti.nbytes(), path_.string());
  if (ti.scalar_type == torch::kBool) {
    // A bool byte other than 0/1 is undefined behaviour in every later use.
    const auto* bytes = static_cast<const unsigned char*>(tensor.data_ptr());
    for (std::uint64_t i = 0; i < ti.nbytes(); ++i)
      if (bytes[i] > 1)
        input_error(path_.string(), "tensor {}: BOOL element {} is {}, expected 0 or 1", quote_name(name), i, bytes[i]);
  }
  return tensor;
}

std::map<std::string, torch::Tensor> SafetensorsFile::load_all() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : tensors_) out.emplace(entry.first, load(entry.first));
  return out;
}

// ---------------------------------------------------------------------------------------------- writing


void write_safetensors(const fs::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  contiguous.reserve(tensors.size());
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw std::invalid_argument("write_safetensors: invalid tensor name '" + name + "'");
    if (header.contains(name))
      throw std::invalid_argument("write_safetensors: tensor name '" + name + "' given twice");
    auto dtype = safetensors_dtype_name(tensor.scalar_type());
    if (!dtype)
      throw std::invalid_argument("write_safetensors: tensor '" + name + "' has unsupported dtype " +
                                  std::string(c10::toString(tensor.scalar_type())));
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    std::uint64_t nbytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.scalar_type());
    header[name] = {{"dtype", *dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(std::move(t));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // a name or metadata string that is not UTF-8
    throw std::invalid_argument(std::string("write_safetensors: ") + e.what());
  }
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');

  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(text.size() >> (8 * i));
  AtomicFileWriter out(path);
  out.write(length_bytes, 8);
  out.write(text.data(), text.size());
  for (const auto& t : contiguous)
    if (t.numel() > 0) out.write(t.data_ptr(), static_cast<std::uint64_t>(t.numel()) * dtype_size(t.scalar_type()));
  out.commit();
}

// ---------------------------------------------------------------------------------------------- index

namespace {

// `shard` must stay inside the index's folder: relative, and no ".." anywhere (checked on the text, not the
// resolved path, because the Hugging Face cache links snapshot files to blobs in another folder).
void check_shard_path(const std::string& shard, const std::string& tensor, const std::string& file) {
  if (shard.empty()) input_error(file, "weight_map: tensor {} has an empty shard file name", quote_name(tensor));
  if (shard.find('\0') != std::string::npos)  // the OS would see only the part before it
    input_error(file, "weight_map: shard {} (tensor {}) contains a NUL character", quote_name(shard), quote_name(tensor));
  fs::path p(shard);
  if (p.is_absolute() || p.has_root_directory() || p.has_root_name())
    input_error(file, "weight_map: shard {} (tensor {}) is an absolute path; it must be inside the index's folder",
                quote_name(shard), quote_name(tensor));
  for (const auto& part : p)
    if (part == "..")
      input_error(file, "weight_map: shard {} (tensor {}) leaves the index's folder", quote_name(shard), quote_name(tensor));
}

}  // namespace

SafetensorsIndex read_safetensors_index(const fs::path& index_path) {
  const std::string file = index_path.string();
  std::error_code ec;
  if (!fs::exists(index_path, ec)) input_error(file, "cannot open: No such file or directory");
  if (!fs::is_regular_file(index_path, ec)) input_error(file, "is not a regular file");
  if (fs::file_size(index_path, ec) > kSafetensorsMaxHeaderBytes)
    input_error(file, "index file is larger than {} bytes", kSafetensorsMaxHeaderBytes);
  std::ifstream in(index_path, std::ios::binary);
  if (!in) input_error(file, "cannot open: {}", std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();

  json root = parse_json_strict(text.str(), file, "index");
  if (!root.is_object()) input_error(file, "index is {}, expected a JSON object", describe(root));

  SafetensorsIndex index;
  index.index_path = index_path;
  if (auto meta = root.find("metadata"); meta != root.end() && !meta->is_null()) {
    if (!meta->is_object()) input_error(file, "metadata is {}, expected an object", describe(*meta));
    if (auto total = meta->find("total_size"); total != meta->end()) {
      if (!total->is_number_unsigned())
        input_error(file, "metadata.total_size is {}, expected a non-negative integer", describe(*total));
      index.total_size = total->get<std::uint64_t>();
    }
  }

  auto weight_map = root.find("weight_map");
  if (weight_map == root.end()) input_error(file, "missing field 'weight_map'");
  if (!weight_map->is_object()) input_error(file, "weight_map is {}, expected an object", describe(*weight_map));
  if (weight_map->empty()) input_error(file, "weight_map is empty");

  const fs::path folder = index_path.has_parent_path() ? index_path.parent_path() : fs::path(".");
  std::set<fs::path> shards;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string())
      input_error(file, "weight_map: tensor {} maps to {}, expected a shard file name", quote_name(tensor),
                  describe(shard));
    const std::string shard_name = shard.get<std::string>();
    check_shard_path(shard_name, tensor, file);
    fs::path shard_path = folder / shard_name;
    if (shards.insert(shard_path).second) {
      if (!fs::exists(shard_path, ec))
        input_error(file, "weight_map: shard {} (tensor {}) does not exist", quote_name(shard_name), quote_name(tensor));
      if (!fs::is_regular_file(shard_path, ec))
        input_error(file, "weight_map: shard {} (tensor {}) is not a regular file", quote_name(shard_name),
                    quote_name(tensor));
    }
    index.weight_map.emplace(tensor, std::move(shard_path));
  }
  index.shards.assign(shards.begin(), shards.end());
  return index;
}

}  // namespace peftlab

// RunFileReader: reads a published run file (checksum first, then HDF5), and the checks on run files
// that other commands use (verify_run_file, run_file_status).
#include "core/recorder.h"

#include <H5Cpp.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/checksum.h"
#include "core/errors.h"
#include "core/run_file_format.h"

namespace peftlab {

namespace fs = std::filesystem;
using namespace run_file;

namespace {

template <typename F>
auto reading(const std::string& path, F&& body) {
  silence_hdf5_once();
  try {
    return body();
  } catch (const H5::Exception& e) {
    throw InputError(path, "unreadable run file: " + e.getDetailMsg());
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const InputError*>(&e)) throw;
    throw InputError(path, e.what());
  }
}

}  // namespace

RunFileReader::RunFileReader(const std::string& path) : path_(path) {
  silence_hdf5_once();
  if (!fs::is_regular_file(path)) throw InputError(path, "no such run file");
  verify_run_file(path);
  // A writer may be in the middle of a flush; a few short retries get past it.
  constexpr int kAttempts = 20;
  for (int attempt = 1;; ++attempt) {
    try {
      file_ = std::make_unique<H5::H5File>(path, H5F_ACC_RDONLY, H5::FileCreatPropList::DEFAULT, unlocked_access());
      return;
    } catch (const H5::Exception& e) {
      if (attempt == kAttempts) throw InputError(path, "cannot open the run file: " + e.getDetailMsg());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

RunFileReader::RunFileReader(RunFileReader&&) noexcept = default;
RunFileReader::~RunFileReader() = default;

bool RunFileReader::has_attribute(const std::string& key) const {
  return reading(path_, [&] { return file_->openGroup("/").attrExists(key); });
}

std::vector<std::string> RunFileReader::attribute_names() const {
  return reading(path_, [&] {
    H5::Group root = file_->openGroup("/");
    std::vector<std::string> names;
    for (int i = 0; i < root.getNumAttrs(); ++i) names.push_back(root.openAttribute(static_cast<unsigned>(i)).getName());
    std::sort(names.begin(), names.end());
    return names;
  });
}

AttributeValue RunFileReader::attribute(const std::string& key) const {
  return reading(path_, [&] {
    H5::Group root = file_->openGroup("/");
    if (!root.attrExists(key)) throw InputError(path_, "run file has no attribute '" + key + "'");
    return read_attribute(root.openAttribute(key));
  });
}

std::string RunFileReader::attribute_string(const std::string& key) const {
  AttributeValue value = attribute(key);
  if (const auto* text = std::get_if<std::string>(&value)) return *text;
  throw InputError(path_, "attribute '" + key + "' is not text");
}

double RunFileReader::attribute_double(const std::string& key) const {
  AttributeValue value = attribute(key);
  if (const auto* real = std::get_if<double>(&value)) return *real;
  if (const auto* integer = std::get_if<int64_t>(&value)) return static_cast<double>(*integer);
  throw InputError(path_, "attribute '" + key + "' is not a number");
}

int64_t RunFileReader::attribute_int(const std::string& key) const {
  AttributeValue value = attribute(key);
  if (const auto* integer = std::get_if<int64_t>(&value)) return *integer;
  throw InputError(path_, "attribute '" + key + "' is not an integer");
}

bool RunFileReader::exists(const std::string& object_path) const {
  return reading(path_, [&] {
    // H5Lexists needs every intermediate link to exist, so check level by level.
    H5::Group root = file_->openGroup("/");
    std::string prefix;
    size_t begin = 1;
    while (begin < object_path.size()) {
      size_t end = object_path.find('/', begin);
      if (end == std::string::npos) end = object_path.size();
      prefix += "/" + object_path.substr(begin, end - begin);
      if (H5Lexists(root.getId(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      begin = end + 1;
    }
    return true;
  });
}

std::vector<std::string> RunFileReader::children(const std::string& group) const {
  if (!exists(group)) return {};
  return reading(path_, [&] { return child_names(file_->openGroup(group)); });
}

std::vector<double> RunFileReader::read_doubles(const std::string& dataset) const {
  if (!exists(dataset)) throw InputError(path_, "run file has no dataset " + dataset);
  return reading(path_, [&] {
    H5::DataSet ds = file_->openDataSet(dataset);
    std::vector<hsize_t> dims = extent(ds);
    if (dims.size() != 1) throw InputError(path_, dataset + " is not 1-D");
    std::vector<double> values(dims[0]);
    if (!values.empty()) ds.read(values.data(), H5::PredType::NATIVE_DOUBLE);
    return values;
  });
}

std::vector<int64_t> RunFileReader::read_ints(const std::string& dataset) const {
  if (!exists(dataset)) throw InputError(path_, "run file has no dataset " + dataset);
  return reading(path_, [&] {
    H5::DataSet ds = file_->openDataSet(dataset);
    if (ds.getTypeClass() != H5T_INTEGER || extent(ds).size() != 1)
      throw InputError(path_, dataset + " is not a 1-D integer dataset");
    return read_int_dataset(ds);
  });
}

std::vector<double> RunFileReader::read_matrix(const std::string& dataset, size_t* rows, size_t* cols) const {
  if (!exists(dataset)) throw InputError(path_, "run file has no dataset " + dataset);
  return reading(path_, [&] {
    H5::DataSet ds = file_->openDataSet(dataset);
    std::vector<hsize_t> dims = extent(ds);
    if (dims.size() != 2) throw InputError(path_, dataset + " is not 2-D");
    *rows = dims[0];
    *cols = dims[1];
    std::vector<double> values(dims[0] * dims[1]);
    if (!values.empty()) ds.read(values.data(), H5::PredType::NATIVE_DOUBLE);
    return values;
  });
}

std::map<std::string, double> RunFileReader::final_metrics(const std::string& split) const {
  std::string group_path = "/final/" + split;
  if (!exists(group_path)) return {};
  return reading(path_, [&] {
    H5::Group group = file_->openGroup(group_path);
    std::map<std::string, double> metrics;
    for (int i = 0; i < group.getNumAttrs(); ++i) {
      H5::Attribute attribute = group.openAttribute(static_cast<unsigned>(i));
      double value = 0;
      attribute.read(H5::PredType::NATIVE_DOUBLE, &value);
      metrics[attribute.getName()] = value;
    }
    return metrics;
  });
}

void verify_run_file(const std::string& path) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path, "cannot open the run file");
    std::ostringstream all;
    all << in.rdbuf();
    bytes = all.str();
  }
  if (bytes.compare(0, std::strlen(kHeaderMagic), kHeaderMagic) != 0) {
    const bool hdf5 = bytes.compare(0, 8, "\x89HDF\r\n\x1a\n") == 0;
    throw InputError(path, hdf5 ? "unreadable run file: no checksummed header (written by an older peftlab?); run it "
                                  "again to rewrite it"
                                : "unreadable run file: it starts with neither a peftlab run-file header nor HDF5's "
                                  "signature");
  }
  if (bytes.size() < kHeaderBytes)
    throw InputError(path, fmt::format("damaged run file: {} bytes, shorter than its {}-byte header", bytes.size(),
                                       kHeaderBytes));
  const std::string expected = run_file_header(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes);
  if (bytes.compare(0, kHeaderBytes, expected) != 0)
    throw InputError(path, "damaged run file: its contents do not match the checksum in its header");
}

std::optional<std::string> run_file_status(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  return RunFileReader(path).status();
}

}  // namespace peftlab

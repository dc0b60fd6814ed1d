#include "core/run_file_format.h"

#include <algorithm>
#include <stdexcept>

#include "core/checksum.h"

namespace peftlab::run_file {

std::string run_file_header(const char* data, size_t size) {
  std::string header = std::string(kHeaderMagic) + "sha256 " + sha256_bytes(std::string(data, size)) + "\n" +
                       "bytes " + std::to_string(size) + "\n";
  header.resize(kHeaderBytes, '\0');
  return header;
}

void silence_hdf5_once() {
  static const bool silenced = [] {
    H5::Exception::dontPrint();
    return true;
  }();
  (void)silenced;
}

// The writer holds no lock so that readers (this library, h5py, h5dump) can open the file mid-run;
// readers skip locking too so a crashed writer can never leave a stale lock behind.
H5::FileAccPropList unlocked_access() {
  H5::FileAccPropList access;
  H5Pset_file_locking(access.getId(), false, true);
  return access;
}

AttributeValue read_attribute(const H5::Attribute& attribute) {
  switch (attribute.getTypeClass()) {
    case H5T_STRING: {
      std::string text;
      attribute.read(attribute.getStrType(), text);
      return text;
    }
    case H5T_INTEGER: {
      int64_t value = 0;
      attribute.read(H5::PredType::NATIVE_INT64, &value);
      return value;
    }
    case H5T_FLOAT: {
      double value = 0;
      attribute.read(H5::PredType::NATIVE_DOUBLE, &value);
      return value;
    }
    default: throw std::runtime_error("attribute '" + attribute.getName() + "' is neither text nor a number");
  }
}

std::vector<hsize_t> extent(const H5::DataSet& dataset) {
  H5::DataSpace space = dataset.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  return dims;
}

std::vector<std::string> child_names(const H5::Group& group) {
  std::vector<std::string> names;
  for (hsize_t i = 0; i < group.getNumObjs(); ++i) names.push_back(group.getObjnameByIdx(i));
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<int64_t> read_int_dataset(const H5::DataSet& dataset) {
  std::vector<hsize_t> dims = extent(dataset);
  std::vector<int64_t> values(dims.empty() ? 0 : dims[0]);
  if (!values.empty()) dataset.read(values.data(), H5::PredType::NATIVE_INT64);
  return values;
}

}  // namespace peftlab::run_file

// The run file's on-disk format, shared by its writer (core/recorder.cpp) and its reader
// (core/run_file_reader.cpp): the checksummed text header in front of the HDF5 bytes, and the HDF5 access
// both sides use.
#pragma once

#include <H5Cpp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/recorder.h"

namespace peftlab::run_file {

// The run file's first kHeaderBytes (an HDF5 user block, which HDF5 skips): a text header that holds the
// SHA-256 and length of the HDF5 bytes that follow. Readers check it before HDF5 parses anything, because
// HDF5 1.10 can loop for ever (or crash) on damaged metadata.
constexpr size_t kHeaderBytes = 512;
constexpr const char* kHeaderMagic = "peftlab run file\n";

// The header for the HDF5 bytes `data` (`size` of them), padded to kHeaderBytes.
std::string run_file_header(const char* data, size_t size);

// HDF5's own error printing off (peftlab reports errors itself), once per process.
void silence_hdf5_once();

// File access without HDF5's file locking (see the definition for why).
H5::FileAccPropList unlocked_access();

AttributeValue read_attribute(const H5::Attribute& attribute);
std::vector<hsize_t> extent(const H5::DataSet& dataset);
// The names of a group's members, sorted.
std::vector<std::string> child_names(const H5::Group& group);
std::vector<int64_t> read_int_dataset(const H5::DataSet& dataset);

}  // namespace peftlab::run_file

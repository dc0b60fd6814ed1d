#include "core/recorder.h"

#include <H5Cpp.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/atomic_file.h"
#include "core/checksum.h"
#include "core/errors.h"
#include "core/run_file_format.h"

namespace peftlab {

namespace fs = std::filesystem;
using namespace run_file;

std::string to_string(RunStatus status) {
  switch (status) {
    case RunStatus::running: return "running";
    case RunStatus::completed: return "completed";
    case RunStatus::failed: return "failed";
    case RunStatus::interrupted: return "interrupted";
    case RunStatus::diverged: return "diverged";
  }
  return "unknown";
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr hsize_t kChunkRows = 256;

// The recorder's working file lives in memory (HDF5's core driver, no backing store): HDF5 itself never
// writes to disk, so a full disk cannot leave HDF5 in the failed-write state in which closing the file
// crashes (HDF5 1.10 segfaults in H5Fclose after a failed H5Fflush). Publishing writes the file's image.
H5::FileAccPropList in_memory_access() {
  H5::FileAccPropList access = unlocked_access();
  H5Pset_fapl_core(access.getId(), 1 << 20, /*backing_store=*/false);
  return access;
}

std::string utc_now_iso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

bool link_exists(const H5::Group& group, const std::string& name) {
  return H5Lexists(group.getId(), name.c_str(), H5P_DEFAULT) > 0;
}

// Opens "/a/b/c", creating each missing level.
H5::Group open_or_create_group(H5::H5File& file, const std::string& path) {
  H5::Group root = file.openGroup("/");
  std::string prefix;
  size_t begin = 1;
  while (begin < path.size()) {
    size_t end = path.find('/', begin);
    if (end == std::string::npos) end = path.size();
    prefix += "/" + path.substr(begin, end - begin);
    if (!link_exists(root, prefix)) root.createGroup(prefix);
    begin = end + 1;
  }
  return file.openGroup(path);
}

void check_name(const std::string& what, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw std::invalid_argument("run file: bad " + what + " name '" + name + "' (empty or containing '/')");
}

void write_attribute(H5::H5Object& object, const std::string& key, const AttributeValue& value) {
  if (object.attrExists(key)) object.removeAttr(key);
  H5::DataSpace scalar(H5S_SCALAR);
  if (const auto* text = std::get_if<std::string>(&value)) {
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(H5T_CSET_UTF8);
    object.createAttribute(key, type, scalar).write(type, *text);
  } else if (const auto* real = std::get_if<double>(&value)) {
    object.createAttribute(key, H5::PredType::IEEE_F64LE, scalar).write(H5::PredType::NATIVE_DOUBLE, real);
  } else {
    const int64_t* integer = std::get_if<int64_t>(&value);
    object.createAttribute(key, H5::PredType::STD_I64LE, scalar).write(H5::PredType::NATIVE_INT64, integer);
  }
}

// An appendable dataset: `cols` == 0 gives 1-D (rows), otherwise 2-D (rows x cols). Floats fill with NaN.
H5::DataSet open_or_create_appendable(H5::Group& group, const std::string& name, bool integer, hsize_t cols = 0) {
  if (link_exists(group, name)) return group.openDataSet(name);
  int rank = cols == 0 ? 1 : 2;
  hsize_t dims[2] = {0, cols}, max_dims[2] = {H5S_UNLIMITED, cols};
  hsize_t chunk[2] = {cols == 0 ? kChunkRows : std::max<hsize_t>(1, 4096 / cols), cols};
  H5::DataSpace space(rank, dims, max_dims);
  H5::DSetCreatPropList properties;
  properties.setChunk(rank, chunk);
  if (!integer) properties.setFillValue(H5::PredType::NATIVE_DOUBLE, &kNaN);
  return group.createDataSet(name, integer ? H5::PredType::STD_I64LE : H5::PredType::IEEE_F64LE, space, properties);
}

// Grows the first dimension by one and writes `row` (cols values; 1 for a 1-D dataset) into it.
void append_row(H5::DataSet& dataset, const void* row, const H5::PredType& memory_type, hsize_t cols) {
  std::vector<hsize_t> dims = extent(dataset);
  hsize_t width = dims.size() == 2 ? dims[1] : 1;
  if (width != cols)
    throw std::invalid_argument("run file: row of " + std::to_string(cols) + " values for a dataset of width " +
                                std::to_string(width));
  hsize_t n = dims[0];
  dims[0] = n + 1;
  dataset.extend(dims.data());
  H5::DataSpace file_space = dataset.getSpace();
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = n;
  count[0] = 1;
  file_space.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
  H5::DataSpace memory_space(static_cast<int>(count.size()), count.data());
  dataset.write(row, memory_type, memory_space, file_space);
}

void append_int(H5::Group& group, const std::string& name, int64_t value) {
  H5::DataSet dataset = open_or_create_appendable(group, name, true);
  append_row(dataset, &value, H5::PredType::NATIVE_INT64, 1);
}

void append_double(H5::Group& group, const std::string& name, double value) {
  H5::DataSet dataset = open_or_create_appendable(group, name, false);
  append_row(dataset, &value, H5::PredType::NATIVE_DOUBLE, 1);
}

torch::Tensor as_row(const torch::Tensor& values) {
  return values.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
}

hsize_t width_of(const H5::Group& group, const std::string& name) {
  std::vector<hsize_t> dims = extent(group.openDataSet(name));
  return dims.size() == 2 ? dims[1] : 1;
}

// Appends `values` (or, when undefined, a row of NaN) to the 2-D dataset `name`, first NaN-padding it to
// `row` rows so that it stays aligned with the group's `step`.
void append_vector(H5::Group& group, const std::string& name, const torch::Tensor& values, hsize_t row) {
  if (!values.defined()) {
    if (!link_exists(group, name)) return;
    std::vector<double> nan_row(width_of(group, name), kNaN);
    H5::DataSet dataset = group.openDataSet(name);
    append_row(dataset, nan_row.data(), H5::PredType::NATIVE_DOUBLE, nan_row.size());
    return;
  }
  torch::Tensor data = as_row(values);
  H5::DataSet dataset = open_or_create_appendable(group, name, false, static_cast<hsize_t>(data.numel()));
  std::vector<hsize_t> dims = extent(dataset);
  if (dims[0] < row) {
    dims[0] = row;
    dataset.extend(dims.data());
  }
  append_row(dataset, data.data_ptr<double>(), H5::PredType::NATIVE_DOUBLE, static_cast<hsize_t>(data.numel()));
}

hsize_t rows_of(const H5::Group& group, const std::string& name) {
  return link_exists(group, name) ? extent(group.openDataSet(name))[0] : 0;
}

// Keeps the leading rows whose step is <= resume_step in every dataset of `group` (which has a `step`).
void truncate_after(H5::Group& group, int64_t resume_step) {
  if (!link_exists(group, "step")) return;
  std::vector<int64_t> steps = read_int_dataset(group.openDataSet("step"));
  hsize_t keep = 0;
  while (keep < steps.size() && steps[keep] <= resume_step) ++keep;
  for (const std::string& name : child_names(group)) {
    if (group.childObjType(name) != H5O_TYPE_DATASET) continue;
    H5::DataSet dataset = group.openDataSet(name);
    std::vector<hsize_t> dims = extent(dataset);
    if (!dims.empty() && dims[0] > keep) {
      dims[0] = keep;
      dataset.extend(dims.data());
    }
  }
}

template <typename F>
auto with_hdf5_errors(const std::string& path, const char* action, F&& body) {
  silence_hdf5_once();
  try {
    return body();
  } catch (const H5::Exception& e) {
    throw std::runtime_error(path + ": HDF5 failed to " + action + ": " + e.getDetailMsg());
  }
}

}  // namespace

// ---- RunRecorder ----

RunRecorder::RunRecorder(std::string path, std::unique_ptr<H5::H5File> file)
    : path_(std::move(path)), file_(std::move(file)) {}
RunRecorder::RunRecorder(RunRecorder&&) noexcept = default;
RunRecorder& RunRecorder::operator=(RunRecorder&&) noexcept = default;
RunRecorder::~RunRecorder() {
  if (!file_) return;
  try {
    if (dirty_) publish();
  } catch (const std::exception& e) {  // a destructor must not throw
    std::fprintf(stderr, "warning: %s: rows held back were not published: %s\n", path_.c_str(), e.what());
  }
  try {
    file_->close();
  } catch (...) {
  }
}

void RunRecorder::publish() {
  hold_ = false;
  std::vector<char> image = with_hdf5_errors(path_, "flush", [&] {
    file_->flush(H5F_SCOPE_GLOBAL);
    const ssize_t size = H5Fget_file_image(file_->getId(), nullptr, 0);
    if (size < 0) throw H5::FileIException("H5Fget_file_image", "cannot size the file image");
    std::vector<char> bytes(static_cast<size_t>(size));
    if (H5Fget_file_image(file_->getId(), bytes.data(), bytes.size()) != size)
      throw H5::FileIException("H5Fget_file_image", "cannot copy the file image");
    return bytes;
  });
  AtomicFileWriter out(path_);  // a full disk: InputError naming run.h5, which keeps its last whole state
  out.write(run_file_header(image.data(), image.size()));
  out.write(image.data(), image.size());
  out.commit(/*durable=*/false);  // the rename guards against crashes; an fsync per row would cost too much
  dirty_ = false;
}

RunRecorder RunRecorder::create(const std::string& path, const RunProvenance& p, bool overwrite_completed) {
  if (fs::exists(path) && !overwrite_completed) {
    std::optional<std::string> status;
    try {
      status = run_file_status(path);
    } catch (const InputError&) {  // unreadable leftovers of a crashed run are replaced
    }
    if (status == "completed")
      throw InputError(path, "holds a completed run; refusing to overwrite it (remove it or ask to overwrite)");
  }
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
  return with_hdf5_errors(path, "create the run file", [&] {
    H5::FileCreatPropList creation;
    creation.setUserblock(kHeaderBytes);  // room for the checksummed header (publish)
    auto file = std::make_unique<H5::H5File>(path + ".work", H5F_ACC_TRUNC, creation, in_memory_access());
    RunRecorder recorder(path, std::move(file));
    H5::Group root = recorder.file_->openGroup("/");
    const std::vector<std::pair<std::string, AttributeValue>> attributes = {
        {"schema_version", kRunFileSchemaVersion}, {"run_id", p.run_id},
        {"status", to_string(RunStatus::running)}, {"method", p.method},
        {"method_label", p.method_label.empty() ? p.method : p.method_label},
        {"task", p.task}, {"seed", p.seed}, {"spec", p.spec}, {"git_commit", p.git_commit},
        {"versions", p.versions}, {"host", p.host}, {"threads", p.threads}, {"start_time", utc_now_iso8601()},
        {"trainable_params", p.trainable_params}, {"total_params", p.total_params},
        {"data_checksums", p.data_checksums}, {"headline_metric", p.headline_metric}};
    for (const auto& [key, value] : attributes) write_attribute(root, key, value);
    for (const char* group : {"/train", "/eval", "/decomposition", "/final"}) open_or_create_group(*recorder.file_, group);
    recorder.flush();
    return recorder;
  });
}

RunRecorder RunRecorder::open_for_append(const std::string& path, int64_t resume_step) {
  if (!fs::exists(path)) throw InputError(path, "no run file to resume");
  if (!RunFileReader(path).has_attribute("schema_version")) throw InputError(path, "not a peftlab run file");
  return with_hdf5_errors(path, "reopen the run file", [&] {
    // The published copy is whole (a kill can only have interrupted a publish's temporary file); it is read
    // into memory and continued there.
    auto file = std::make_unique<H5::H5File>(path, H5F_ACC_RDWR, H5::FileCreatPropList::DEFAULT, in_memory_access());
    RunRecorder recorder(path, std::move(file));
    H5::H5File& f = *recorder.file_;
    H5::Group train = open_or_create_group(f, "/train");
    truncate_after(train, resume_step);
    for (const char* parent : {"/eval", "/decomposition"}) {
      H5::Group group = open_or_create_group(f, parent);
      for (const std::string& name : child_names(group)) {
        H5::Group child = group.openGroup(name);
        truncate_after(child, resume_step);
      }
    }
    open_or_create_group(f, "/final");
    recorder.set_attribute("status", to_string(RunStatus::running));
    return recorder;
  });
}

void RunRecorder::drop_eval_rows_from(int64_t step) {
  with_hdf5_errors(path_, "drop evaluation rows", [&] {
    H5::Group eval = open_or_create_group(*file_, "/eval");
    for (const std::string& name : child_names(eval)) {
      H5::Group split = eval.openGroup(name);
      truncate_after(split, step - 1);
    }
    flush();
  });
}

void RunRecorder::set_attribute(const std::string& key, const std::string& value) {
  with_hdf5_errors(path_, "write an attribute", [&] {
    H5::Group root = file_->openGroup("/");
    write_attribute(root, key, value);
    flush();
  });
}

void RunRecorder::set_attribute(const std::string& key, double value) {
  with_hdf5_errors(path_, "write an attribute", [&] {
    H5::Group root = file_->openGroup("/");
    write_attribute(root, key, value);
    flush();
  });
}

void RunRecorder::set_attribute(const std::string& key, int64_t value) {
  with_hdf5_errors(path_, "write an attribute", [&] {
    H5::Group root = file_->openGroup("/");
    write_attribute(root, key, value);
    flush();
  });
}

void RunRecorder::append_train(const TrainRow& row) {
  with_hdf5_errors(path_, "append a training row", [&] {
    H5::Group train = open_or_create_group(*file_, "/train");
    append_int(train, "step", row.step);
    append_double(train, "loss", row.loss);
    append_double(train, "lr", row.lr);
    append_double(train, "grad_norm", row.grad_norm);
    append_double(train, "tokens_per_s", row.tokens_per_s);
    flush();
  });
}

void RunRecorder::append_eval(const std::string& split, int64_t step, const std::map<std::string, double>& metrics) {
  check_name("split", split);
  for (const auto& [name, value] : metrics) {
    check_name("metric", name);
    if (name == "step") throw std::invalid_argument("run file: a metric cannot be called 'step'");
  }
  with_hdf5_errors(path_, "append an evaluation row", [&] {
    H5::Group group = open_or_create_group(*file_, "/eval/" + split);
    hsize_t row = rows_of(group, "step");
    // Metrics seen before but missing now get NaN; new ones are NaN-filled up to this row (fill value).
    for (const std::string& name : child_names(group)) {
      if (name != "step" && metrics.count(name) == 0) append_double(group, name, kNaN);
    }
    for (const auto& [name, value] : metrics) {
      H5::DataSet dataset = open_or_create_appendable(group, name, false);
      hsize_t dims[1] = {row};
      if (extent(dataset)[0] < row) dataset.extend(dims);
      append_row(dataset, &value, H5::PredType::NATIVE_DOUBLE, 1);
    }
    append_int(group, "step", step);
    flush();
  });
}

void RunRecorder::append_decomposition(const std::string& layer, int64_t step, const DecompositionStats& stats,
                                       bool with_magnitudes) {
  check_name("layer", layer);
  with_hdf5_errors(path_, "append decomposition statistics", [&] {
    H5::Group group = open_or_create_group(*file_, "/decomposition/" + layer);
    // Check the magnitude widths before writing anything, so a bad call leaves the rows aligned.
    if (with_magnitudes) {
      for (const auto& [name, values] : {std::pair{"m_row", &stats.m_row}, std::pair{"m_col", &stats.m_col}}) {
        if (!values->defined() || values->numel() == 0)
          throw std::invalid_argument(std::string("run file: no ") + name + " magnitudes for " + layer);
        if (link_exists(group, name) && width_of(group, name) != static_cast<hsize_t>(values->numel()))
          throw std::invalid_argument("run file: " + layer + "/" + name + " has width " +
                                      std::to_string(width_of(group, name)) + ", got " +
                                      std::to_string(values->numel()) + " values");
      }
    }
    hsize_t row = rows_of(group, "step");
    append_int(group, "step", step);
    append_double(group, "dM_row", stats.dM_row);
    append_double(group, "dD_row", stats.dD_row);
    append_double(group, "dM_col", stats.dM_col);
    append_double(group, "dD_col", stats.dD_col);
    append_vector(group, "m_row", with_magnitudes ? stats.m_row : torch::Tensor(), row);
    append_vector(group, "m_col", with_magnitudes ? stats.m_col : torch::Tensor(), row);
    flush();
  });
}

void RunRecorder::set_final(const std::string& split, const std::map<std::string, double>& metrics) {
  check_name("split", split);
  with_hdf5_errors(path_, "write final metrics", [&] {
    H5::Group group = open_or_create_group(*file_, "/final/" + split);
    for (const auto& [name, value] : metrics) write_attribute(group, name, value);
    flush();
  });
}

void RunRecorder::set_final_predictions(const std::string& split, const std::vector<double>& predictions,
                                        const std::vector<double>& references) {
  check_name("split", split);
  if (predictions.size() != references.size() || predictions.empty())
    throw std::invalid_argument("run file: " + split + ": predictions and references must be non-empty and alike in length");
  with_hdf5_errors(path_, "write final predictions", [&] {
    H5::Group group = open_or_create_group(*file_, "/final_predictions/" + split);
    for (const auto& [name, values] : {std::pair{"prediction", &predictions}, std::pair{"reference", &references}}) {
      if (link_exists(group, name)) group.unlink(name);
      hsize_t dims[1] = {values->size()};
      hsize_t chunk[1] = {std::min<hsize_t>(values->size(), 16384)};
      H5::DSetCreatPropList properties;
      properties.setChunk(1, chunk);
      properties.setDeflate(6);
      H5::DataSpace space(1, dims);
      H5::DataSet dataset = group.createDataSet(name, H5::PredType::IEEE_F64LE, space, properties);
      dataset.write(values->data(), H5::PredType::NATIVE_DOUBLE);
    }
    flush();
  });
}

void RunRecorder::finish(RunStatus status) {
  with_hdf5_errors(path_, "finish the run file", [&] {
    H5::Group root = file_->openGroup("/");
    write_attribute(root, "end_time", utc_now_iso8601());
    write_attribute(root, "peak_memory_bytes", peak_rss_bytes());
    write_attribute(root, "status", to_string(status));
    flush();  // one publish: the file appears with its status and everything before it at once
  });
}

void RunRecorder::flush() {
  dirty_ = true;
  if (!hold_) publish();
}

}  // namespace peftlab

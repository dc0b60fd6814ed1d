#include "experiments/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "core/atomic_file.h"
#include "core/checksum.h"
#include "core/errors.h"
#include "core/recorder.h"

namespace peftlab {

namespace fs = std::filesystem;

std::string run_identity(const std::string& resolved_spec) { return sha256_bytes(resolved_spec); }

std::map<std::string, torch::Tensor> trainable_parameters(torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model.named_parameters())
    if (item.value().requires_grad()) out[item.key()] = item.value();
  return out;
}

namespace {

// Serialises through `write` in memory, then writes the bytes into place atomically with every write
// checked (a full disk is an InputError naming the checkpoint; LibTorch's own file writer would abort).
template <typename Write>
void write_atomically(const fs::path& file, Write write) {
  fs::create_directories(file.parent_path());
  torch::serialize::OutputArchive archive;
  write(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  AtomicFileWriter out(file);
  out.write(bytes.str());
  out.commit();
}

void write_weights(torch::serialize::OutputArchive& archive, torch::nn::Module& model, const std::string& identity) {
  archive.write("identity", c10::IValue(identity));
  for (const auto& [name, tensor] : trainable_parameters(model)) archive.write("weights/" + name, tensor.detach());
}

void read_weights(torch::serialize::InputArchive& archive, torch::nn::Module& model, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : trainable_parameters(model)) {
    torch::Tensor stored;
    if (!archive.try_read("weights/" + name, stored))
      throw InputError(source, fmt::format("checkpoint lacks '{}' (written by another method or model?)", name));
    if (stored.sizes() != tensor.sizes()) throw InputError(source, fmt::format("'{}' has another shape", name));
    tensor.copy_(stored);
  }
}

torch::Tensor scalar(int64_t v) { return torch::tensor(v, torch::kLong); }
torch::Tensor scalar(double v) { return torch::tensor(v, torch::kFloat64); }

torch::serialize::InputArchive open_archive(const fs::path& file) {
  if (!fs::exists(file)) throw InputError(file.string(), "no such checkpoint");
  if (!fs::is_regular_file(file)) throw InputError(file.string(), "not a file");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string());
  } catch (const c10::Error&) {
    throw InputError(file.string(), "not a readable peftlab checkpoint (truncated or damaged)");
  }
  return archive;
}

std::string archive_identity(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  try {
    if (archive.try_read("identity", value) && value.isString()) return value.toStringRef();
  } catch (const c10::Error&) {
  }
  return "";
}

// Refuses a file of another run before anything is read from it.
void check_identity(torch::serialize::InputArchive& archive, const fs::path& file, const std::string& expected) {
  if (expected.empty()) return;
  const std::string found = archive_identity(archive);
  if (found.empty())
    throw InputError(file.string(), "records no run identity (written by an older peftlab); start the run afresh");
  if (found != expected)
    throw InputError(file.string(), "belongs to another run (its spec differs from this run's); start afresh "
                                    "without --resume, or resume with the spec it was written with");
}

}  // namespace

void save_checkpoint(const fs::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const TrainingState& state, const std::string& identity) {
  write_atomically(file, [&](torch::serialize::OutputArchive& archive) {
    write_weights(archive, model, identity);
    torch::serialize::OutputArchive optimizer_archive;
    optimizer.save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write("state/step", scalar(state.step));
    archive.write("state/epoch", scalar(state.data.epoch));
    archive.write("state/index", scalar(state.data.index));
    archive.write("state/best_metric", scalar(state.best_metric));
    archive.write("state/best_step", scalar(state.best_step));
    archive.write("state/evals_without_improvement", scalar(state.evals_without_improvement));
    // Dropout draws from the default generator: its state makes the continuation identical.
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("state/rng", generator.get_state());
  });
}

TrainingState load_checkpoint(const fs::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                              const std::string& identity) {
  const std::string source = file.string();
  auto archive = open_archive(file);
  check_identity(archive, file, identity);
  try {
    read_weights(archive, model, source);
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    auto read = [&](const char* key) {
      torch::Tensor t;
      archive.read(std::string("state/") + key, t);
      return t;
    };
    TrainingState state;
    state.step = read("step").item<int64_t>();
    state.data.epoch = read("epoch").item<int64_t>();
    state.data.index = read("index").item<int64_t>();
    state.best_metric = read("best_metric").item<double>();
    state.best_step = read("best_step").item<int64_t>();
    state.evals_without_improvement = read("evals_without_improvement").item<int64_t>();
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(read("rng"));
    return state;
  } catch (const c10::Error& e) {
    throw InputError(source, fmt::format("damaged checkpoint: {}", e.what_without_backtrace()));
  }
}

void save_weights(const fs::path& file, torch::nn::Module& model, const std::string& identity) {
  write_atomically(file, [&](torch::serialize::OutputArchive& archive) { write_weights(archive, model, identity); });
}

void load_weights(const fs::path& file, torch::nn::Module& model, const std::string& identity) {
  auto archive = open_archive(file);
  check_identity(archive, file, identity);
  read_weights(archive, model, file.string());
}

std::string file_identity(const fs::path& file) {
  auto archive = open_archive(file);
  return archive_identity(archive);
}

void require_finished_run(const fs::path& run_dir) {
  const fs::path run_file = run_dir / "run.h5", adapter = run_dir / "adapter.pt";
  if (!fs::exists(run_file)) throw InputError(run_dir.string(), "no run.h5 in this folder (not a run folder)");
  RunFileReader reader(run_file.string());
  if (!reader.has_attribute("status") || !reader.has_attribute("spec"))
    throw InputError(run_file.string(), "not a peftlab run file (no status or spec attribute)");
  const std::string status = reader.status();
  if (status != "completed")
    throw InputError(run_file.string(), fmt::format("the run has not finished (status {}); its folder holds no result "
                                                    "of this run yet",
                                                    status));
  const std::string spec = reader.attribute_string("spec");
  try {
    YAML::Node parsed = YAML::Load(spec);
    if (!parsed.IsMap()) throw InputError(run_file.string(), "the recorded spec is not a YAML mapping");
  } catch (const YAML::Exception& e) {
    throw InputError(run_file.string(), fmt::format("the recorded spec is not valid YAML (its line {}: {})",
                                                    e.mark.is_null() ? 0 : e.mark.line + 1, e.msg));
  }
  if (!fs::exists(adapter)) throw InputError(adapter.string(), "missing: the run completed but its weights are gone");
  const std::string found = file_identity(adapter);
  if (found != run_identity(spec))
    throw InputError(adapter.string(), found.empty() ? "records no run identity (written by an older peftlab)"
                                                     : "belongs to another run than run.h5 (the spec differs)");
}

}  // namespace peftlab

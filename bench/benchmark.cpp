#include "bench/benchmark.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "bench/cuda_memory.h"
#include "core/data_root.h"
#include "core/errors.h"
#include "core/generate.h"
#include "core/llama2c.h"
#include "core/model_io.h"
#include "core/runtime.h"
#include "experiments/training_step.h"
#include "methods/adaptation.h"
#include "methods/registry.h"

namespace peftlab {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// llama2.c's shapes (dim, layers, heads, hidden, vocab 32000, tied output embedding), as llama configs.
BackboneConfigPtr llama2c_shape(int64_t dim, int64_t layers, int64_t heads, int64_t hidden) {
  const nlohmann::json config{{"model_type", "llama"},     {"hidden_size", dim},          {"num_hidden_layers", layers},
                              {"num_attention_heads", heads}, {"intermediate_size", hidden}, {"vocab_size", 32000},
                              {"max_position_embeddings", 1024}, {"rms_norm_eps", 1e-5},    {"tie_word_embeddings", true}};
  return backbone_config_from_json(config, "bench shape");
}

std::filesystem::path stories260k_file() { return data_path("models/stories260K/stories260K.bin"); }

Backbone bench_model(const BenchCase& c) {
  if (c.shape == "260K") return load_llama2c(stories260k_file());
  torch::manual_seed(c.seed);
  Backbone model = bench_shape_config(c.shape)->build();
  // GPT-2/llama2.c's init (normal, std 0.02) for every matrix; norm weights stay 1. The numbers are not
  // the point, but a sane loss (about ln 32000 at the start) keeps the fp32/bf16 comparison meaningful.
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters())
    if (p.dim() == 2) p.normal_(0.0, 0.02);
  return model;
}

// A size line of /proc/self/status ("VmRSS:  1234 kB"), in bytes.
int64_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0) return std::stoll(line.substr(field.size())) * 1024;
  return 0;
}

// Median time of the evaluation forward (no gradients, dropout off): the loss over the batch, as
// log-likelihood scoring computes it.
double time_evaluation(TaskModelImpl& model, const Batch& batch, int64_t repeats) {
  torch::NoGradGuard no_grad;
  model.eval();
  model.loss_terms(batch);  // warm-up
  std::vector<double> times;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    model.loss_terms(batch).sum.item<double>();
    times.push_back(seconds_since(start));
  }
  return median(times);
}

// Greedy generation with the trained, merged model: `batch` prompts of random tokens, seq_len/2 to seq_len long
// (so the batch is left-padded), generate_tokens new tokens each (no stop token), batched and one at a time.
void time_generation(BackboneImpl& model, const BenchCase& c, BenchMeasurement& m) {
  model.eval();
  auto generator = at::detail::createCPUGenerator(c.seed + 2);
  const int64_t vocab = model.config().vocab_size, shortest = std::max<int64_t>(1, c.seq_len / 2);
  std::vector<std::vector<int>> prompts;
  for (int64_t i = 0; i < c.batch; ++i) {
    const int64_t length = shortest + (c.batch > 1 ? (c.seq_len - shortest) * i / (c.batch - 1) : 0);
    auto ids = torch::randint(vocab, {length}, generator, torch::kLong);
    prompts.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
  }
  const int64_t room = model.config().max_position_embeddings - c.seq_len;
  const int64_t new_tokens = std::min(c.generate_tokens, std::max<int64_t>(1, room));
  auto start = Clock::now();
  const auto batched = generate_batch(model, prompts, new_tokens, {});
  m.generate_batched_seconds = seconds_since(start);
  GenerationOptions greedy;
  greedy.max_new_tokens = new_tokens;
  std::vector<std::vector<int>> single;
  start = Clock::now();
  for (const auto& prompt : prompts) single.push_back(generate(model, prompt, greedy));
  m.generate_single_seconds = seconds_since(start);
  m.generate_identical = batched == single;
}

}  // namespace

const std::vector<std::string>& bench_shape_names() {
  static const std::vector<std::string> names{"260K", "15M", "42M", "110M"};
  return names;
}

BackboneConfigPtr bench_shape_config(const std::string& shape) {
  if (shape == "260K") return read_llama2c_config(stories260k_file());
  if (shape == "15M") return llama2c_shape(288, 6, 6, 768);
  if (shape == "42M") return llama2c_shape(512, 8, 8, 1376);
  if (shape == "110M") return llama2c_shape(768, 12, 12, 2048);
  if (std::filesystem::exists(shape)) return read_model_config(shape);
  throw InputError("--shape", fmt::format("unknown shape '{}' (260K, 15M, 42M, 110M, or a model path)", shape));
}

std::string BenchCase::label() const {
  std::string out = method;
  if (precision != "fp32") out += "+" + precision;
  if (activation_checkpointing) out += "+ckpt";
  if (!tiled_loss) out += "+logits";
  return out;
}

BenchCase bench_case_from_label(const std::string& label, const BenchCase& defaults) {
  BenchCase c = defaults;
  std::stringstream parts(label);
  std::string part;
  std::getline(parts, c.method, '+');
  const auto names = method_names();
  if (std::find(names.begin(), names.end(), c.method) == names.end())
    throw InputError("--methods", fmt::format("unknown method '{}' ({})", c.method, fmt::join(names, ", ")));
  while (std::getline(parts, part, '+')) {
    if (part == "bf16") c.precision = "bf16";
    else if (part == "ckpt") c.activation_checkpointing = true;
    else if (part == "logits") c.tiled_loss = false;
    else throw InputError("--methods", fmt::format("'{}': unknown option '{}' (bf16, ckpt or logits)", label, part));
  }
  return c;
}

nlohmann::json BenchCase::to_json() const {
  return {{"shape", shape}, {"method", method}, {"precision", precision},
          {"activation_checkpointing", activation_checkpointing}, {"tiled_loss", tiled_loss},
          {"generate_tokens", generate_tokens}, {"batch", batch}, {"seq_len", seq_len},
          {"rank", rank}, {"warmup", warmup}, {"steps", steps}, {"eval_repeats", eval_repeats},
          {"threads", threads}, {"device", device}, {"seed", seed}};
}

BenchCase BenchCase::from_json(const nlohmann::json& j) {
  BenchCase c;
  c.shape = j.at("shape"), c.method = j.at("method"), c.precision = j.at("precision");
  c.activation_checkpointing = j.at("activation_checkpointing");
  c.tiled_loss = j.at("tiled_loss"), c.generate_tokens = j.at("generate_tokens");
  c.batch = j.at("batch"), c.seq_len = j.at("seq_len"), c.rank = j.at("rank");
  c.warmup = j.at("warmup"), c.steps = j.at("steps"), c.eval_repeats = j.at("eval_repeats");
  c.threads = j.at("threads"), c.device = j.at("device"), c.seed = j.at("seed");
  return c;
}

std::unique_ptr<Method> bench_method(const std::string& name, int64_t rank) {
  auto method = make_method_from_yaml(fmt::format("{{name: {}}}", name), "--methods");
  if (method->trains_base_weights()) return method;
  return make_method_from_yaml(fmt::format("{{name: {}, rank: {}, targets: all-linear}}", name, rank), "--methods");
}

StepFlops training_step_flops(const BackboneConfig& config, const Method& method, int64_t batch, int64_t seq_len) {
  const double tokens = static_cast<double>(batch * seq_len);
  const bool full = method.trains_base_weights();
  std::map<std::string, const SlotPlan*> adapted;
  const AdaptationPlan plan = plan_adaptation(config, method);
  for (const auto& s : plan.slots) adapted[s.slot] = &s;
  StepFlops f;
  for (const auto& slot : config.slot_shapes()) {
    const double in = static_cast<double>(slot.in_features), out = static_cast<double>(slot.out_features);
    const double matmul = 2.0 * tokens * in * out;
    f.forward += matmul;
    // The first layer's q, k, v read the embedding's output: with a frozen embedding nothing needs the
    // gradient of their input.
    const bool first_qkv = slot.name.rfind("layers.0.self_attn.", 0) == 0 && slot.name.find("o_proj") == std::string::npos;
    if (full || !first_qkv) f.input_backward += matmul;
    if (full) f.weight_backward += matmul;
    if (auto it = adapted.find(slot.name); it != adapted.end())
      f.adapter += method.adapter_step_flops(slot.in_features, slot.out_features, it->second->rank, tokens);
  }
  // Attention products QK^T and PV over the whole (masked) T x T square, per layer; backward needs both operands' gradients.
  const double attention = 4.0 * tokens * static_cast<double>(seq_len) * static_cast<double>(config.hidden_size) * static_cast<double>(config.num_hidden_layers);
  f.forward += attention;
  f.input_backward += 2.0 * attention;
  // The output projection to the vocabulary.
  const double head = 2.0 * tokens * static_cast<double>(config.hidden_size) * static_cast<double>(config.vocab_size);
  f.forward += head;
  f.input_backward += head;
  if (full) f.weight_backward += head;
  return f;
}

double BenchMeasurement::tokens_per_second() const {
  return step_seconds > 0 ? static_cast<double>(bench_case.batch * bench_case.seq_len) / step_seconds : 0.0;
}

double BenchMeasurement::gflops_per_second() const { return step_seconds > 0 ? flops_per_step / step_seconds / 1e9 : 0.0; }

nlohmann::json BenchMeasurement::to_json() const {
  nlohmann::json j = {{"case", bench_case.to_json()}, {"step_seconds", step_seconds},
                      {"step_seconds_min", step_seconds_min}, {"step_seconds_max", step_seconds_max},
                      {"flops_per_step", flops_per_step}, {"final_loss", final_loss},
                      {"eval_plain_seconds", eval_plain_seconds}, {"eval_merged_seconds", eval_merged_seconds},
                      {"rss_after_setup_bytes", rss_after_setup_bytes}, {"peak_rss_bytes", peak_rss_bytes},
                      {"generate_batched_seconds", generate_batched_seconds},
                      {"generate_single_seconds", generate_single_seconds}, {"generate_identical", generate_identical}};
  if (peak_gpu_bytes) j["peak_gpu_bytes"] = *peak_gpu_bytes;
  if (rounds > 1) j["rounds"] = rounds;
  return j;
}

BenchMeasurement BenchMeasurement::from_json(const nlohmann::json& j) {
  BenchMeasurement m;
  m.bench_case = BenchCase::from_json(j.at("case"));
  m.step_seconds = j.at("step_seconds"), m.step_seconds_min = j.at("step_seconds_min");
  m.step_seconds_max = j.at("step_seconds_max"), m.flops_per_step = j.at("flops_per_step");
  m.final_loss = j.at("final_loss"), m.eval_plain_seconds = j.at("eval_plain_seconds");
  m.eval_merged_seconds = j.at("eval_merged_seconds"), m.rss_after_setup_bytes = j.at("rss_after_setup_bytes");
  m.peak_rss_bytes = j.at("peak_rss_bytes");
  m.generate_batched_seconds = j.at("generate_batched_seconds");
  m.generate_single_seconds = j.at("generate_single_seconds"), m.generate_identical = j.at("generate_identical");
  if (j.contains("peak_gpu_bytes")) m.peak_gpu_bytes = j.at("peak_gpu_bytes").get<int64_t>();
  m.rounds = j.value("rounds", int64_t{1});
  return m;
}

BenchMeasurement run_bench_case(const BenchCase& c) {
  set_threads(c.threads);
  const torch::Device device = parse_device(c.device);
  const int gpu = device.is_cuda() ? (device.has_index() ? device.index() : 0) : -1;
  if (gpu >= 0) reset_cuda_peak_memory(gpu);
  BenchMeasurement m;
  m.bench_case = c;

  Backbone backbone = bench_model(c);
  const BackboneConfig& config = backbone->config();
  if (c.seq_len > config.max_position_embeddings)
    throw InputError("--seq-len", fmt::format("{} exceeds the {} model's context of {}", c.seq_len, c.shape,
                                              config.max_position_embeddings));
  backbone->to(device);
  TaskModel model(backbone, TaskKind::CausalLM, 0);
  model->set_tiled_lm_loss(c.tiled_loss);
  const Batch batch = random_token_batch(config.vocab_size, c.batch, c.seq_len, c.seed + 1, device);

  // The plain backbone's evaluation time, before any adapter exists.
  m.eval_plain_seconds = time_evaluation(*model, batch, c.eval_repeats);

  auto method = bench_method(c.method, c.rank);
  apply_method(*backbone, *method, c.seed);
  backbone->to(device);
  backbone->set_activation_checkpointing(c.activation_checkpointing);
  TrainConfig train;
  train.lr = 1e-4;
  train.precision = c.precision;
  auto optimizer = make_optimizer(*model, train);
  m.flops_per_step = training_step_flops(config, *method, c.batch, c.seq_len).total();
  m.rss_after_setup_bytes = status_bytes("VmRSS:");

  DataParallel one_process;
  model->train();
  std::vector<double> times;
  for (int64_t step = 0; step < c.warmup + c.steps; ++step) {
    const auto start = Clock::now();
    auto result = training_step(*model, *optimizer, [&] { return batch; }, train, one_process);
    if (gpu >= 0) torch::cuda::synchronize(gpu);  // the step's kernels are queued: wait for them before the clock
    const double seconds = seconds_since(start);
    m.final_loss = result.loss;
    if (step >= c.warmup) times.push_back(seconds);
  }
  m.step_seconds = median(times);
  m.step_seconds_min = *std::min_element(times.begin(), times.end());
  m.step_seconds_max = *std::max_element(times.begin(), times.end());
  if (gpu >= 0) m.peak_gpu_bytes = cuda_peak_allocated_bytes(gpu);  // before merging: the training peak

  merge_all(*backbone);
  m.eval_merged_seconds = time_evaluation(*model, batch, c.eval_repeats);
  // This process's own high-water mark since exec. Not the launcher's wait4 ru_maxrss: Linux carries the
  // parent's peak across exec into it, and the launcher has run the matmul-peak probe (0.8 GiB).
  m.peak_rss_bytes = status_bytes("VmHWM:");
  if (c.generate_tokens > 0) time_generation(*backbone, c, m);
  return m;
}

double median(std::vector<double> values) {
  if (values.empty()) throw std::invalid_argument("median: no values");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

BenchMeasurement combine_rounds(const std::vector<BenchMeasurement>& rounds) {
  if (rounds.empty()) throw std::invalid_argument("combine_rounds: no rounds");
  BenchMeasurement m = rounds.front();
  auto median_of = [&](double BenchMeasurement::*field) {
    std::vector<double> values;
    for (const auto& r : rounds) values.push_back(r.*field);
    return median(values);
  };
  for (const auto& r : rounds) {
    if (r.bench_case.to_json() != m.bench_case.to_json())
      throw std::invalid_argument("combine_rounds: rounds of different cases");
    m.step_seconds_min = std::min(m.step_seconds_min, r.step_seconds_min);
    m.step_seconds_max = std::max(m.step_seconds_max, r.step_seconds_max);
    m.rss_after_setup_bytes = std::max(m.rss_after_setup_bytes, r.rss_after_setup_bytes);
    m.peak_rss_bytes = std::max(m.peak_rss_bytes, r.peak_rss_bytes);
    if (r.peak_gpu_bytes) m.peak_gpu_bytes = std::max(m.peak_gpu_bytes.value_or(0), *r.peak_gpu_bytes);
    m.generate_identical = m.generate_identical && r.generate_identical;
  }
  m.step_seconds = median_of(&BenchMeasurement::step_seconds);
  m.eval_plain_seconds = median_of(&BenchMeasurement::eval_plain_seconds);
  m.eval_merged_seconds = median_of(&BenchMeasurement::eval_merged_seconds);
  m.generate_batched_seconds = median_of(&BenchMeasurement::generate_batched_seconds);
  m.generate_single_seconds = median_of(&BenchMeasurement::generate_single_seconds);
  m.rounds = static_cast<int64_t>(rounds.size());
  return m;
}

double matmul_peak_gflops(int threads) {
  set_threads(threads);
  torch::NoGradGuard no_grad;
  double best = 0;
  // (m, k, n): squares, and the 110M step's largest products (tokens x dim x hidden, tokens x dim x vocab).
  const std::vector<std::array<int64_t, 3>> shapes{{1024, 1024, 1024}, {2048, 2048, 2048}, {2048, 768, 2048},
                                                   {2048, 768, 32000}};
  for (const auto& [m, k, n] : shapes) {
    auto a = torch::randn({m, k}), b = torch::randn({k, n});
    torch::mm(a, b);  // warm-up
    for (int repeat = 0; repeat < 2; ++repeat) {
      const auto start = Clock::now();
      auto c = torch::mm(a, b);
      const double seconds = seconds_since(start);
      best = std::max(best, 2.0 * static_cast<double>(m * k * n) / seconds / 1e9);
    }
  }
  return best;
}

double cuda_matmul_peak_gflops(torch::Device device) {
  if (!device.is_cuda()) throw std::invalid_argument("cuda_matmul_peak_gflops: not a CUDA device");
  const int gpu = device.has_index() ? device.index() : 0;
  double best = 0;
  {
    torch::NoGradGuard no_grad;
    const auto options = torch::TensorOptions().device(device).dtype(torch::kBFloat16);
    for (const int64_t n : {4096, 8192}) {
      auto a = torch::randn({n, n}, options), b = torch::randn({n, n}, options);
      torch::mm(a, b);  // warm-up (and cuBLAS's heuristics)
      torch::cuda::synchronize(gpu);
      for (int repeat = 0; repeat < 5; ++repeat) {
        const auto start = Clock::now();
        auto c = torch::mm(a, b);
        torch::cuda::synchronize(gpu);
        best = std::max(best, 2.0 * static_cast<double>(n * n * n) / seconds_since(start) / 1e9);
      }
    }
  }
  release_cuda_cache();  // the cases run in other processes: leave them the memory
  return best;
}

Batch random_token_batch(int64_t vocab, int64_t rows, int64_t length, uint64_t seed, torch::Device device) {
  auto generator = at::detail::createCPUGenerator(seed);
  Batch b;
  b.input_ids = torch::randint(vocab, {rows, length}, generator, torch::kLong).to(device);
  b.attention_mask = torch::ones({rows, length}, torch::kLong).to(device);
  b.labels = b.input_ids.clone();
  b.last_index = torch::full({rows}, length - 1, torch::kLong).to(device);
  b.example_index = torch::arange(rows, torch::kLong);
  return b;
}

}  // namespace peftlab

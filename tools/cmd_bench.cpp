// peftlab bench: training-step time, tokens/s, GFLOP/s (and its share of this machine's matmul peak), peak
// memory and merged-weight evaluation time for every method, beside the same step in PyTorch with PEFT-style
// layers (bench/reference_step.py). Each case runs in its own child process (this binary with --case), so
// its peak resident memory (its own VmHWM) is its own. The output is the table docs/performance.md keeps; the
// targets the measurements are judged by live there, not here. With --device cuda (docs/gpu.md) the cases run
// on the GPU: the table adds each case's peak GPU memory, "of peak" is against the GPU's bfloat16 matmul rate,
// and the CPU reference is not run (scripts/gpu_check.sh compares with transformers + PEFT on the GPU).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "analysis/python_driver.h"
#include "bench/benchmark.h"
#include "bench/cuda_memory.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "methods/registry.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

namespace fs = std::filesystem;

struct BenchArgs {
  std::vector<std::string> shapes;
  std::string methods;  // empty: every registered method, and LoRA with bf16 and with checkpointing
  int64_t steps = 0, warmup = -1, batch = 8, seq_len = 256, rank = 8, eval_repeats = 5, generate = 16, rounds = 1;
  bool reference = true;
  std::string json_out, markdown_out;
  std::string child_case;  // internal: run one case in this process and print its JSON
};

std::string last_line(const std::string& text) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line))
    if (!line.empty()) last = line;
  return last;
}

// Steps per shape: enough for a stable median, few enough that the whole bench takes about 15 minutes here.
int64_t default_steps(const std::string& shape) {
  if (shape == "260K") return 20;
  if (shape == "15M") return 10;
  if (shape == "42M") return 8;
  return 6;
}

struct Reference {
  std::optional<double> step_seconds;
  int64_t peak_rss_bytes = 0;
  std::string why_missing;
};

std::string reference_script() {
  const fs::path candidates[] = {fs::path(PEFTLAB_SOURCE_DIR) / "bench" / "reference_step.py",
                                 fs::canonical("/proc/self/exe").parent_path() / ".." / "bench" / "reference_step.py"};
  for (const auto& c : candidates)
    if (fs::exists(c)) return c.string();
  return {};
}

Reference run_reference(const BenchCase& c, const BackboneConfig& config) {
  Reference r;
  const std::string script = reference_script();
  if (script.empty()) {
    r.why_missing = "bench/reference_step.py not found";
    return r;
  }
  const int threads = c.threads > 0 ? c.threads : hardware_threads();
  // The reference is a llama-shaped decoder: it takes the shape fields of the config.json.
  const nlohmann::json shape = config.to_hf_json();
  if (!shape.contains("num_attention_heads") || !shape.contains("intermediate_size")) {
    r.why_missing = "the Python reference covers decoders only";
    return r;
  }
  auto field = [&](const char* key) { return std::to_string(shape.at(key).get<int64_t>()); };
  ChildOutput run;
  try {
    run = run_capturing_stdout(
        {analysis_python(), script, "--dim", field("hidden_size"), "--layers", field("num_hidden_layers"),
         "--heads", field("num_attention_heads"), "--kv-heads", field("num_key_value_heads"), "--hidden",
         field("intermediate_size"), "--vocab", field("vocab_size"), "--batch",
         std::to_string(c.batch), "--seq-len", std::to_string(c.seq_len), "--method", c.method, "--rank",
         std::to_string(c.rank), "--warmup", std::to_string(c.warmup), "--steps", std::to_string(c.steps),
         "--threads", std::to_string(threads)});
  } catch (const std::system_error&) {
    run.status = 127;  // no interpreter: reported like a failed script
  }
  if (run.status != 0) {
    r.why_missing = "the Python reference failed (needs python3-torch)";
    return r;
  }
  auto j = nlohmann::json::parse(last_line(run.stdout_text));
  r.step_seconds = j.at("step_seconds_median").get<double>();
  r.peak_rss_bytes = j.at("peak_rss_bytes").get<int64_t>();
  return r;
}

// The reference's rounds as one: the median step, the largest peak; missing if any round was.
Reference combine_references(const std::vector<Reference>& rounds) {
  Reference out;
  std::vector<double> steps;
  for (const auto& r : rounds) {
    if (!r.step_seconds) return r;
    steps.push_back(*r.step_seconds);
    out.peak_rss_bytes = std::max(out.peak_rss_bytes, r.peak_rss_bytes);
  }
  out.step_seconds = median(steps);
  return out;
}

BenchMeasurement run_case_in_child(const BenchCase& c) {
  const std::string self = fs::canonical("/proc/self/exe").string();
  const ChildOutput run = run_capturing_stdout({self, "--quiet", "bench", "--case", c.to_json().dump()});
  if (run.status != 0)
    throw std::runtime_error(fmt::format("bench case {} {} failed (exit {})", c.shape, c.label(), run.status));
  return BenchMeasurement::from_json(nlohmann::json::parse(last_line(run.stdout_text)));
}

struct ShapeResults {
  std::string shape;
  std::vector<BenchMeasurement> cases;
  std::map<std::string, Reference> references;  // by method
  const BenchMeasurement* find(const std::string& label) const {
    for (const auto& m : cases)
      if (m.bench_case.label() == label) return &m;
    return nullptr;
  }
};

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// The memory a case is compared by: its peak GPU memory on a GPU, else its peak RSS.
double compared_memory(const BenchMeasurement& m, bool gpu) {
  return static_cast<double>(gpu ? m.peak_gpu_bytes.value_or(0) : m.peak_rss_bytes);
}

// `gpu`: the cases ran on a CUDA device; the table gains a peak GPU memory column (the CPU table is unchanged).
std::string shape_table(const ShapeResults& r, double peak_gflops, bool gpu) {
  const BenchMeasurement* lora = r.find("lora");
  if (gpu && lora == nullptr) lora = r.find("lora+bf16");  // on a GPU the bf16 cases are the ones that matter
  std::string out = fmt::format(
      "\n### {}\n\n| method | step (ms) | tokens/s | GFLOP/s | of peak | peak RSS (MiB) | {}time / LoRA | memory / LoRA "
      "| eval merged / plain (ms) | final loss | Python (ms) | speed-up |\n"
      "|---|---:|---:|---:|---:|---:|{}---:|---:|---:|---:|---:|---:|\n",
      r.shape, gpu ? "peak GPU (MiB) | " : "", gpu ? "---:|" : "");
  for (const auto& m : r.cases) {
    std::string vs_time = "", vs_memory = "", python = "", speedup = "", gpu_memory = "";
    if (lora != nullptr) {
      vs_time = fmt::format("{:.3f}", m.step_seconds / lora->step_seconds);
      if (compared_memory(*lora, gpu) > 0)
        vs_memory = fmt::format("{:.3f}", compared_memory(m, gpu) / compared_memory(*lora, gpu));
    }
    if (gpu) gpu_memory = (m.peak_gpu_bytes ? fmt::format("{:.0f}", mib(*m.peak_gpu_bytes)) : std::string("n/a")) + " | ";
    if (m.bench_case.precision == "fp32" && !m.bench_case.activation_checkpointing) {
      auto it = r.references.find(m.bench_case.method);
      if (it != r.references.end() && it->second.step_seconds) {
        python = fmt::format("{:.1f}", *it->second.step_seconds * 1e3);
        speedup = fmt::format("{:.2f}x", *it->second.step_seconds / m.step_seconds);
      }
    }
    out += fmt::format("| {} | {:.1f} | {:.0f} | {:.1f} | {:.0f}% | {:.0f} | {}{} | {} | {:.1f} / {:.1f} | {:.4f} | {} | {} |\n",
                       m.bench_case.label(), m.step_seconds * 1e3, m.tokens_per_second(), m.gflops_per_second(),
                       100.0 * m.gflops_per_second() / peak_gflops, mib(m.peak_rss_bytes), gpu_memory, vs_time, vs_memory,
                       m.eval_merged_seconds * 1e3, m.eval_plain_seconds * 1e3, m.final_loss, python, speedup);
  }
  return out;
}

// Greedy generation after training: `batch` prompts in one left-padded batch against one prompt at a time.
std::string generation_table(const ShapeResults& r) {
  std::string out = fmt::format(
      "\n#### {}: greedy generation, {} prompts of {} to {} tokens, {} new tokens each\n\n"
      "| method | batched (s) | tokens/s | one at a time (s) | tokens/s | speed-up | same tokens |\n"
      "|---|---:|---:|---:|---:|---:|---|\n",
      r.shape, r.cases.front().bench_case.batch, std::max<int64_t>(1, r.cases.front().bench_case.seq_len / 2),
      r.cases.front().bench_case.seq_len, r.cases.front().bench_case.generate_tokens);
  for (const auto& m : r.cases) {
    const double tokens = static_cast<double>(m.bench_case.batch * m.bench_case.generate_tokens);
    out += fmt::format("| {} | {:.2f} | {:.0f} | {:.2f} | {:.0f} | {:.2f}x | {} |\n", m.bench_case.label(),
                       m.generate_batched_seconds, tokens / m.generate_batched_seconds, m.generate_single_seconds,
                       tokens / m.generate_single_seconds, m.generate_single_seconds / m.generate_batched_seconds,
                       m.generate_identical ? "yes" : "NO");
  }
  return out;
}

int run_bench(const BenchArgs& args) {
  if (!args.child_case.empty()) {
    BenchCase c;
    try {
      c = BenchCase::from_json(nlohmann::json::parse(args.child_case));
    } catch (const nlohmann::json::exception& e) {
      throw InputError("--case", e.what());
    }
    std::cout << run_bench_case(c).to_json().dump() << std::endl;
    return 0;
  }
  const auto shapes = args.shapes.empty() ? bench_shape_names() : args.shapes;
  BenchCase defaults;
  defaults.batch = args.batch, defaults.seq_len = args.seq_len, defaults.rank = args.rank;
  defaults.eval_repeats = args.eval_repeats, defaults.generate_tokens = args.generate;
  defaults.threads = global_options().threads, defaults.device = global_options().device;
  const torch::Device device = parse_device(defaults.device);
  const bool gpu = device.is_cuda();
  if (gpu) defaults.device = device.str();  // "auto" resolved, so that every case names the device it ran on
  std::vector<BenchCase> variants;
  std::stringstream list(args.methods.empty() ? fmt::format("{},lora+bf16,lora+ckpt", fmt::join(method_names(), ","))
                                              : args.methods);
  for (std::string label; std::getline(list, label, ',');)
    if (!label.empty()) variants.push_back(bench_case_from_label(label, defaults));
  for (const auto& shape : shapes) bench_shape_config(shape);  // unknown shapes fail before anything runs

  const int threads = defaults.threads > 0 ? defaults.threads : hardware_threads();
  const double peak = gpu ? cuda_matmul_peak_gflops(device) : matmul_peak_gflops(threads);
  std::string report = fmt::format(
      "## peftlab bench\n\nbatch {} x {} tokens, causal-LM loss, targets q,k,v,o,gate,up,down, rank {}, AdamW; "
      "{} thread(s), device {}; {} matmul peak of this {}: {:.1f} GFLOP/s. Step time: median of the "
      "timed steps after warm-up{}. Peak RSS: the whole process (model, optimizer, activations).{}\n",
      defaults.batch, defaults.seq_len, defaults.rank, threads, defaults.device, gpu ? "bfloat16" : "float32",
      gpu ? "GPU" : "machine", peak,
      args.rounds > 1 ? fmt::format(", median of {} interleaved rounds; memory: the largest round's", args.rounds) : "",
      gpu ? " Peak GPU: the most memory the CUDA caching allocator handed out at once during setup and the "
            "training steps (torch.cuda.max_memory_allocated). The CPU's Python reference is not run on a GPU."
          : "");
  std::cout << report << std::flush;

  std::vector<ShapeResults> all;
  nlohmann::json raw = {{"matmul_peak_gflops", peak}, {"threads", threads}, {"shapes", nlohmann::json::array()}};
  if (gpu) raw["device"] = device.str(), raw["matmul_peak_dtype"] = "bfloat16";
  for (const auto& shape : shapes) {
    ShapeResults r{shape, {}, {}};
    const BackboneConfigPtr config = bench_shape_config(shape);
    // Rounds interleave the cases (1, 2, ..., 1, 2, ...), so that a machine whose speed drifts over minutes
    // slows every case alike and the ratios between them hold.
    std::vector<std::vector<BenchMeasurement>> rounds(variants.size());
    std::map<std::string, std::vector<Reference>> reference_rounds;
    for (int64_t round = 0; round < args.rounds; ++round) {
      for (size_t i = 0; i < variants.size(); ++i) {
        BenchCase c = variants[i];
        c.shape = shape;
        c.steps = args.steps > 0 ? args.steps : default_steps(shape);
        c.warmup = args.warmup >= 0 ? args.warmup : (shape == "260K" ? 5 : 2);
        spdlog::info("bench {} {}: {} steps after {} warm-up{}", shape, c.label(), c.steps, c.warmup,
                     args.rounds > 1 ? fmt::format(" (round {} of {})", round + 1, args.rounds) : "");
        rounds[i].push_back(run_case_in_child(c));
        const bool reference_method = c.method == "lora" || c.method == "dora";
        if (args.reference && !gpu && reference_method && c.precision == "fp32" && !c.activation_checkpointing) {
          spdlog::info("bench {} {}: Python reference", shape, c.method);
          reference_rounds[c.method].push_back(run_reference(c, *config));
          if (!reference_rounds[c.method].back().why_missing.empty())
            spdlog::warn("{}", reference_rounds[c.method].back().why_missing);
        }
      }
    }
    for (const auto& case_rounds : rounds) r.cases.push_back(combine_rounds(case_rounds));
    for (const auto& [method, refs] : reference_rounds) r.references[method] = combine_references(refs);
    std::string table = shape_table(r, peak, gpu);
    if (args.generate > 0 && !r.cases.empty()) table += generation_table(r);
    std::cout << table << std::flush;
    report += table;
    nlohmann::json shape_json = {{"shape", shape}, {"cases", nlohmann::json::array()}, {"references", nlohmann::json::object()}};
    for (const auto& m : r.cases) shape_json["cases"].push_back(m.to_json());
    for (const auto& [method, ref] : r.references)
      shape_json["references"][method] = ref.step_seconds ? nlohmann::json{{"step_seconds", *ref.step_seconds}, {"peak_rss_bytes", ref.peak_rss_bytes}}
                                                          : nlohmann::json{{"missing", ref.why_missing}};
    raw["shapes"].push_back(shape_json);
    all.push_back(std::move(r));
  }
  auto write = [](const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    if (!out.flush()) throw InputError(path, "cannot write");
  };
  if (!args.markdown_out.empty()) write(args.markdown_out, report);
  if (!args.json_out.empty()) write(args.json_out, raw.dump(2) + "\n");
  return 0;
}

std::function<int()> setup_bench(CLI::App& cmd) {
  auto args = std::make_shared<BenchArgs>();
  cmd.add_option("--shape", args->shapes,
                 "260K, 15M, 42M, 110M, or a model path (its config.json's shape, random weights); repeatable; "
                 "default: the four names");
  cmd.add_option("--methods", args->methods,
                 "Comma-separated cases: methods of `peftlab methods`, each optionally +bf16 and/or +ckpt (activation "
                 "checkpointing); default: every method, lora+bf16, lora+ckpt");
  cmd.add_option("--steps", args->steps, "Timed steps per case (default: 20, 10, 8, 6 by shape)")->check(CLI::PositiveNumber);
  cmd.add_option("--warmup", args->warmup, "Untimed steps first (default: 5 at 260K, else 2)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--eval-repeats", args->eval_repeats, "Timed evaluation forwards per case (median)")->check(CLI::PositiveNumber);
  cmd.add_option("--batch", args->batch, "Rows per batch")->check(CLI::PositiveNumber);
  cmd.add_option("--seq-len", args->seq_len, "Tokens per row")->check(CLI::PositiveNumber);
  cmd.add_option("--rank", args->rank, "Adapter rank")->check(CLI::PositiveNumber);
  cmd.add_option("--generate", args->generate,
                 "Also time greedy generation of N new tokens per prompt, batched and one at a time (0: off)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--rounds", args->rounds,
                 "Measure every case this many times, interleaved, and report medians (ratios between cases then "
                 "hold on a machine whose speed drifts)")
      ->check(CLI::PositiveNumber);
  cmd.add_flag("!--no-reference", args->reference, "Skip the Python (PEFT-style) reference");
  cmd.add_option("--markdown", args->markdown_out, "Also write the tables to this file");
  cmd.add_option("--json", args->json_out, "Write every measurement as JSON to this file");
  cmd.add_option("--case", args->child_case, "(internal) run one case in this process")->group("");
  return [args] { return run_bench(*args); };
}

PEFTLAB_REGISTER_VERB("bench", "Speed and memory of every method (docs/performance.md)", setup_bench);

}  // namespace
}  // namespace peftlab::cli

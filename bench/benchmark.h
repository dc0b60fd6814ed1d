// `peftlab bench`: how fast every method trains and evaluates, on the real stories260K and on randomly
// initialised llama2.c shapes (15M, 42M, 110M), measured with the runner's own training step
// (experiments/training_step.h). One case (shape x method x options) runs in one process so that its peak
// memory is its own; `tools/cmd_bench.cpp` launches the cases, the Python reference (bench/reference_step.py)
// and the matmul-peak probe, and prints the table docs/performance.md keeps.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/backbone.h"
#include "methods/method.h"

namespace peftlab {

// "260K", "15M", "42M", "110M".
const std::vector<std::string>& bench_shape_names();
// The shape's config (260K: read from the stories260K checkpoint's header). A shape that is not one of the
// names is a model path of any family (a folder with config.json, config.json itself, or a llama2.c file):
// its config, randomly initialised. InputError for an unknown name that is no path.
BackboneConfigPtr bench_shape_config(const std::string& shape);

// One measurement: a shape, a registered method (`peftlab methods`) and the training options.
struct BenchCase {
  std::string shape = "15M";
  std::string method = "lora";
  std::string precision = "fp32";      // fp32 | bf16
  bool activation_checkpointing = false;
  bool tiled_loss = true;  // false ("+logits"): the unfused logits + cross-entropy (core/lm_loss.h)
  int64_t batch = 8, seq_len = 256, rank = 8;
  // > 0: also time greedy generation of this many new tokens for `batch` prompts (lengths seq_len/2 to
  // seq_len), one left-padded batch against one prompt at a time.
  int64_t generate_tokens = 0;
  int64_t warmup = 2, steps = 10, eval_repeats = 5;
  int threads = 0;  // 0: all cores
  std::string device = "cpu";
  uint64_t seed = 0;

  // "lora", "lora+bf16", "lora+ckpt", "lora+logits": the method and the options that differ from the default.
  std::string label() const;
  nlohmann::json to_json() const;
  static BenchCase from_json(const nlohmann::json& j);
};

// Parses a --methods entry: "dora", "lora+bf16", "lora+ckpt", "lora+logits", "lora+bf16+ckpt". InputError otherwise.
BenchCase bench_case_from_label(const std::string& label, const BenchCase& defaults);

// Floating-point operations of one training step, counted from the shapes (multiply-add = 2): the forward
// matmuls and attention products, the input-gradient backward, the weight-gradient backward of what
// trains (full fine-tuning: every matrix), and the adapters' own terms (forward, input and weight
// gradients, as each method counts them: Method::adapter_step_flops). Element-wise work (norms, softmax, SiLU,
// rotary, the optimizer) is not counted: this is the number a matmul-bound step is judged by.
struct StepFlops {
  double forward = 0, input_backward = 0, weight_backward = 0, adapter = 0;
  double total() const { return forward + input_backward + weight_backward + adapter; }
};
StepFlops training_step_flops(const BackboneConfig& config, const Method& method, int64_t batch, int64_t seq_len);

// The bench's configuration of a registered method: rank `rank` on every linear (all-linear), or the method's
// defaults when it trains the base weights. InputError for an unknown name.
std::unique_ptr<Method> bench_method(const std::string& name, int64_t rank);

struct BenchMeasurement {
  BenchCase bench_case;
  double step_seconds = 0;                       // median over `steps` steps after `warmup`
  double step_seconds_min = 0, step_seconds_max = 0;
  double flops_per_step = 0;
  double final_loss = 0;                         // training loss of the last step
  double eval_plain_seconds = 0;                 // one no-grad forward + loss of the batch, backbone alone
  double eval_merged_seconds = 0;                // the same with the method's adapters merged into the weights
  int64_t rss_after_setup_bytes = 0;             // model, adapters and optimizer built, before the first step
  int64_t peak_rss_bytes = 0;                    // the case process's high-water mark (VmHWM), whole process
  double generate_batched_seconds = 0;           // generate_tokens new tokens for every prompt, one batch
  double generate_single_seconds = 0;            // the same, one prompt at a time
  bool generate_identical = false;               // both gave the same tokens
  // On a CUDA device: the most bytes the CUDA caching allocator had handed out at once (model, adapters,
  // optimizer state, activations), over setup and the training steps; what torch.cuda.max_memory_allocated
  // reports in Python. Absent on the CPU (and from the JSON of CPU cases).
  std::optional<int64_t> peak_gpu_bytes;
  int64_t rounds = 1;                            // measurements combined by combine_rounds

  double tokens_per_second() const;
  double gflops_per_second() const;
  nlohmann::json to_json() const;
  static BenchMeasurement from_json(const nlohmann::json& j);
};

// Runs one case in this process.
BenchMeasurement run_bench_case(const BenchCase& bench_case);

// The middle value (the mean of the two middle ones for an even count); std::invalid_argument for none.
double median(std::vector<double> values);

// One case measured in several rounds, as one: the median of each time, the smallest minimum and largest
// maximum step, the largest of each memory peak, and generation identical only if it was in every round.
// std::invalid_argument for no rounds or rounds of different cases.
BenchMeasurement combine_rounds(const std::vector<BenchMeasurement>& rounds);

// A causal-LM batch of `rows` x `length` random tokens (labels = inputs, every position real): a step's cost,
// and a comparison of two ways of computing it, do not depend on which tokens they are.
Batch random_token_batch(int64_t vocab, int64_t rows, int64_t length, uint64_t seed,
                         torch::Device device = torch::kCPU);

// The best float32 matmul rate (GFLOP/s) of this machine with `threads` threads: square products (1024, 2048)
// and the 110M step's largest products (tokens x dim x hidden, tokens x dim x vocab), best of two repeats each.
double matmul_peak_gflops(int threads);
// The best bfloat16 matmul rate (GFLOP/s) of the CUDA device `device`: square products of 4096 and 8192, best
// of five repeats each after a warm-up, timed between device synchronisations.
double cuda_matmul_peak_gflops(torch::Device device);

}  // namespace peftlab

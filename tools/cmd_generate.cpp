// peftlab generate: text from a model, greedy by default.
#include <iostream>

#include "core/errors.h"
#include "core/generate.h"
#include "core/model_io.h"
#include "core/runtime.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "tools/cli.h"
#include "tools/model_loading.h"

namespace peftlab::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string prompt, adapter;
  int64_t num_beams = 1;
  std::vector<std::string> stop;
  GenerationOptions generation;
};

std::function<int()> setup_generate(CLI::App& cmd) {
  auto args = std::make_shared<GenerateArgs>();
  add_model_options(cmd, args->model);
  cmd.add_option("--prompt", args->prompt, "Text to continue (default: start from BOS alone)");
  cmd.add_option("--max-new-tokens", args->generation.max_new_tokens, "Tokens to generate")->check(CLI::PositiveNumber);
  cmd.add_option("--temperature", args->generation.temperature, "0 for greedy decoding")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", args->generation.top_p, "Nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--seed", args->generation.seed, "Sampling seed");
  cmd.add_option("--num-beams", args->num_beams, "Beam search with this many beams (1: no beam search)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--stop", args->stop,
                 "End once the generated text contains this string (kept in the output; repeatable; not with "
                 "--num-beams)");
  cmd.add_option("--adapter", args->adapter, "An exported adapter folder (PEFT layout) to attach to the model");
  return [args] {
    LoadedModel loaded = load_model_for_cli(args->model);
    if (!loaded.model->config().is_decoder())
      throw InputError(args->model.model, loaded.model->config().model_type() + " is an encoder: it does not generate");
    if (!args->adapter.empty()) {
      load_peft_adapter(*loaded.model, args->adapter);
      merge_all(*loaded.model);
    }
    auto prompt = loaded.tokenizer->encode(args->prompt, /*add_bos=*/true);
    // llama2.c's convention: a story ends at BOS (the start of the next one) or EOS.
    args->generation.stop_ids = {loaded.tokenizer->bos_id(), loaded.tokenizer->eos_id()};
    if (args->num_beams > 1 && args->generation.temperature > 0)
      throw InputError("--num-beams", "beam search is deterministic: use it with --temperature 0");
    if (args->num_beams > 1 && !args->stop.empty())
      throw InputError("--stop", "stop strings end greedy or sampled generation; beam search ends at EOS");
    args->generation.reply_ended = reply_contains_any(*loaded.tokenizer, args->stop);
    auto tokens = args->num_beams > 1 ? beam_search(*loaded.model, prompt, args->num_beams,
                                                    args->generation.max_new_tokens, args->generation.stop_ids)
                                      : generate(*loaded.model, prompt, args->generation);
    std::vector<int> all(prompt.begin(), prompt.end());
    all.insert(all.end(), tokens.begin(), tokens.end());
    std::cout << loaded.tokenizer->decode(all) << std::endl;
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("generate", "Generate text from a model (greedy by default)", setup_generate);

}  // namespace peftlab::cli

// peftlab convert --from llama2c FILE --tokenizer T --out DIR: a llama2.c checkpoint as a Hugging Face
// layout folder (q/k rows permuted to the rotate-half rotary layout, tokenizer beside it).
// peftlab convert --from hf FOLDER --out DIR: a Hugging Face folder of any family (sharded, float16 or bfloat16)
// rewritten as one float32 model.safetensors with its config.json.
#include <spdlog/spdlog.h>

#include "core/errors.h"
#include "core/hf_checkpoint.h"
#include "core/llama2c.h"
#include "core/model_io.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct ConvertArgs {
  std::string format, input, tokenizer, out;
};

std::function<int()> setup_convert(CLI::App& cmd) {
  auto args = std::make_shared<ConvertArgs>();
  cmd.add_option("--from", args->format, "Input format")->required()->check(CLI::IsMember({"llama2c", "hf"}));
  cmd.add_option("file", args->input, "The checkpoint to convert")->required();
  cmd.add_option("--tokenizer,-t", args->tokenizer, "SentencePiece .model to put beside it");
  cmd.add_option("--out,-o", args->out, "Output folder")->required();
  return [args] {
    std::filesystem::path tokenizer = args->tokenizer.empty() ? default_tokenizer_path(args->input) : std::filesystem::path(args->tokenizer);
    Backbone model = args->format == "hf" ? load_hf_model(args->input) : load_llama2c(args->input);
    if (!tokenizer.empty()) check_tokenizer_matches(*load_tokenizer(tokenizer), model->config());
    else spdlog::warn("no tokenizer given or found beside {}; the folder will have none", args->input);
    write_hf_folder(*model, args->out, tokenizer);
    spdlog::info("wrote {} (config.json, model.safetensors{})", args->out, tokenizer.empty() ? "" : ", tokenizer.model");
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("convert", "Convert a llama2.c checkpoint (or a Hugging Face folder) into a float32 Hugging Face layout folder", setup_convert);

}  // namespace peftlab::cli

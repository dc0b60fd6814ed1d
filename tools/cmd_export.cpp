// peftlab export RUN_DIR --out DIR [--merged]: a finished run's adapter in the Hugging Face PEFT layout (with the
// task head as PEFT's modules_to_save), or with --merged a whole Hugging Face layout model.
#include <spdlog/spdlog.h>

#include "core/hf_checkpoint.h"
#include "core/safetensors.h"
#include "experiments/checkpoint.h"
#include "experiments/run_model.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct ExportArgs {
  std::string run_dir, out;
  bool merged = false;
};

std::function<int()> setup_export(CLI::App& cmd) {
  auto args = std::make_shared<ExportArgs>();
  cmd.add_option("run_dir", args->run_dir, "A finished run's folder")->required();
  cmd.add_option("--out,-o", args->out, "Output folder")->required();
  cmd.add_flag("--merged", args->merged, "Write the merged model as a Hugging Face layout folder");
  return [args] {
    require_finished_run(args->run_dir);  // completed, and adapter.pt is its own
    RunModel run = load_finished_run(args->run_dir);
    // The task head under its Hugging Face names ("score.weight"), as PEFT's modules_to_save.
    std::map<std::string, torch::Tensor> head = run.model->head_hf_tensors();
    if (args->merged) {
      merge_all(*run.model->backbone);
      write_hf_folder(*run.model->backbone, args->out, run.tokenizer->path());
      // The task head is not part of a causal-LM folder: it goes beside it, under Hugging Face's names.
      if (!head.empty())
        write_safetensors(std::filesystem::path(args->out) / "score.safetensors",
                          std::vector<std::pair<std::string, torch::Tensor>>(head.begin(), head.end()));
    } else {
      PeftExportOptions options;
      options.task_type = head.empty() ? "CAUSAL_LM" : "SEQ_CLS";
      options.base_model_name_or_path = read_run_spec(args->run_dir).model.path;
      options.modules_to_save = head;
      export_peft_adapter(*run.model->backbone, *run.method, args->out, options);
    }
    spdlog::info("wrote {}", args->out);
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("export", "Export a finished run's adapter (PEFT layout) or merged model", setup_export);

}  // namespace peftlab::cli

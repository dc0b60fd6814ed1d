#include "experiments/run_model.h"

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/model_io.h"
#include "core/recorder.h"
#include "experiments/checkpoint.h"
#include "methods/adaptation.h"
#include "methods/registry.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Backbone build_backbone(const RunSpec& run, std::shared_ptr<Tokenizer>& tokenizer) {
  const ModelSpec& spec = run.model;
  if (!spec.init) {
    LoadedModel loaded = load_model_and_tokenizer(spec.path, spec.tokenizer);
    tokenizer = loaded.tokenizer;
    return loaded.model;
  }
  if (spec.tokenizer.empty()) throw InputError(run.id, "model.init needs model.tokenizer");
  tokenizer = load_tokenizer(spec.tokenizer);
  BackboneConfigPtr config = model_spec_config(spec);
  check_tokenizer_matches(*tokenizer, *config);
  torch::manual_seed(stream_seed(run.seed, "backbone"));
  return config->build();
}

}  // namespace

uint64_t stream_seed(int64_t seed, const std::string& stream) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a of the stream name
  for (unsigned char c : stream) hash = (hash ^ c) * 1099511628211ULL;
  return splitmix64(static_cast<uint64_t>(seed) ^ hash) & 0x7fffffffffffffffULL;
}

BackboneConfigPtr model_spec_config(const ModelSpec& model) {
  if (!model.init) return read_model_config(model.path);
  const ModelInit& init = *model.init;
  const nlohmann::json config{{"model_type", "llama"},
                              {"hidden_size", init.dim},
                              {"num_hidden_layers", init.n_layers},
                              {"num_attention_heads", init.n_heads},
                              {"num_key_value_heads", init.n_kv_heads > 0 ? init.n_kv_heads : init.n_heads},
                              {"intermediate_size", init.hidden_dim},
                              {"vocab_size", init.vocab_size},
                              {"max_position_embeddings", init.max_seq_len},
                              {"rope_theta", init.rope_theta},
                              {"rms_norm_eps", init.norm_eps},
                              {"tie_word_embeddings", true}};
  return backbone_config_from_json(config, "model.init");
}

RunModel build_run_model(const RunSpec& run) {
  RunModel out;
  Backbone backbone = build_backbone(run, out.tokenizer);
  with_source_locations(*run.sources, [&] {
    Options task_options(run.task, run.sources->primary(), "task");
    out.task = make_task(task_options);
    Options method_options(run.method, run.sources->primary(), "method");
    out.method = make_method(method_options);
  });
  fit_task_to_backbone(*out.task, backbone->config(), run.sources->primary());
  torch::manual_seed(stream_seed(run.seed, "init"));
  apply_method(*backbone, *out.method, stream_seed(run.seed, "init"));
  out.model = TaskModel(backbone, out.task->kind(), out.task->num_labels());
  return out;
}

RunSpec read_run_spec(const fs::path& run_dir) {
  const fs::path file = run_dir / "run.h5";
  if (!fs::exists(file)) throw InputError(run_dir.string(), "no run.h5 in this folder (not a run folder)");
  RunFileReader reader(file.string());
  YAML::Node resolved = YAML::Load(reader.attribute_string("spec"));
  // The resolved run lists every train field with its default; drop the alternatives that were not chosen so
  // the section reads back as written.
  YAML::Node train = resolved["train"];
  // Run files written before to_node kept only the alternative in use hold both of each pair.
  if (train["max_steps"] && train["max_steps"].as<int64_t>() > 0) train.remove("epochs");
  else if (train["max_steps"] && train["epochs"]) train.remove("max_steps");
  if (train["warmup_ratio"] && train["warmup_ratio"].as<double>() == 0.0) train.remove("warmup_ratio");
  else if (train["warmup_ratio"] && train["warmup_steps"]) train.remove("warmup_steps");
  YAML::Node spec;
  spec["name"] = resolved["experiment"];
  spec["model"] = resolved["model"];
  spec["methods"].push_back(resolved["method"]);
  spec["tasks"].push_back(resolved["task"]);
  spec["seeds"].push_back(resolved["seed"]);
  spec["train"] = train;
  spec["eval"] = resolved["eval"];
  spec["record"] = resolved["record"];
  YAML::Emitter emitter;
  emitter << spec;
  auto runs = expand_spec(load_spec_text(emitter.c_str(), file.string()));
  if (runs.size() != 1) throw InputError(file.string(), "the recorded spec does not describe exactly one run");
  runs[0].dir = run_dir.string();
  return runs[0];
}

RunModel load_finished_run(const fs::path& run_dir) {
  RunModel run = build_run_model(read_run_spec(run_dir));
  load_weights(run_dir / "adapter.pt", *run.model);
  run.model->eval();
  return run;
}

}  // namespace peftlab

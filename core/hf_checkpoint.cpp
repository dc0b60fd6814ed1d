#include "core/hf_checkpoint.h"

#include <fstream>

#include "core/errors.h"
#include "core/llama2c.h"
#include "core/model_io.h"
#include "core/safetensors.h"

namespace peftlab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json_file(const fs::path& file) {
  if (!fs::exists(file)) throw InputError(file.string(), "no such file");
  std::ifstream in(file);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw InputError(file.string(), fmt::format("invalid JSON: {}", e.what()));
  }
}

template <typename T>
T field(const json& config, const char* key, const std::string& source) {
  if (!config.contains(key)) throw InputError(source, fmt::format("missing field '{}'", key));
  try {
    return config.at(key).get<T>();
  } catch (const json::exception&) {
    throw InputError(source, fmt::format("field '{}' has the wrong type ({})", key, config.at(key).dump()));
  }
}

template <typename T>
T field_or(const json& config, const char* key, T fallback, const std::string& source) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  return field<T>(config, key, source);
}

// Hugging Face names carry a "model." prefix on everything but lm_head.
std::string hf_name(const std::string& name) { return name.rfind("lm_head", 0) == 0 ? name : "model." + name; }

bool is_rotary_weight(const std::string& name) {
  return name.find("self_attn.q_proj.weight") != std::string::npos || name.find("self_attn.k_proj.weight") != std::string::npos;
}

}  // namespace

LlamaConfig read_hf_config(const fs::path& config_json) {
  const std::string source = config_json.string();
  json config = read_json_file(config_json);
  if (!config.is_object()) throw InputError(source, "expected a JSON object");
  if (config.contains("model_type") && config["model_type"] != "llama")
    throw InputError(source, fmt::format("model_type {} is not supported (llama)", config["model_type"].dump()));
  if (config.contains("hidden_act") && config["hidden_act"] != "silu")
    throw InputError(source, fmt::format("hidden_act {} is not supported (silu)", config["hidden_act"].dump()));
  if (config.contains("rope_scaling") && !config["rope_scaling"].is_null())
    throw InputError(source, "rope_scaling is not supported");
  LlamaConfig c;
  c.dim = field<int64_t>(config, "hidden_size", source);
  c.hidden_dim = field<int64_t>(config, "intermediate_size", source);
  c.n_layers = field<int64_t>(config, "num_hidden_layers", source);
  c.n_heads = field<int64_t>(config, "num_attention_heads", source);
  c.n_kv_heads = field_or<int64_t>(config, "num_key_value_heads", c.n_heads, source);
  c.vocab_size = field<int64_t>(config, "vocab_size", source);
  c.max_seq_len = field<int64_t>(config, "max_position_embeddings", source);
  c.norm_eps = field_or<double>(config, "rms_norm_eps", 1e-6, source);
  c.rope_theta = field_or<double>(config, "rope_theta", 10000.0, source);
  c.tie_embeddings = field_or<bool>(config, "tie_word_embeddings", false, source);
  c.rope_interleaved = false;
  c.validate(source);
  return c;
}

json hf_config_json(const LlamaConfig& c) {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"hidden_act", "silu"},
              {"hidden_size", c.dim},
              {"intermediate_size", c.hidden_dim},
              {"num_hidden_layers", c.n_layers},
              {"num_attention_heads", c.n_heads},
              {"num_key_value_heads", c.n_kv_heads},
              {"vocab_size", c.vocab_size},
              {"max_position_embeddings", c.max_seq_len},
              {"rms_norm_eps", c.norm_eps},
              {"rope_theta", c.rope_theta},
              {"tie_word_embeddings", c.tie_embeddings},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"torch_dtype", "float32"}};
}

Llama load_hf_model(const fs::path& folder) {
  LlamaConfig config = read_hf_config(folder / "config.json");
  // Which file holds each tensor: one model.safetensors, or a sharded index.
  std::map<std::string, fs::path> location;
  const fs::path single = folder / "model.safetensors", index = folder / "model.safetensors.index.json";
  std::map<fs::path, std::unique_ptr<SafetensorsFile>> files;
  if (fs::exists(single)) {
    files[single] = std::make_unique<SafetensorsFile>(single);
    for (const auto& name : files[single]->names()) location[name] = single;
  } else if (fs::exists(index)) {
    location = read_safetensors_index(index).weight_map;
    for (const auto& [name, shard] : location)
      if (!files.count(shard)) files[shard] = std::make_unique<SafetensorsFile>(shard);
  } else {
    throw InputError(folder.string(), "no model.safetensors or model.safetensors.index.json in the folder");
  }
  Llama model(config);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& item : model->named_parameters()) {
    const std::string name = hf_name(item.key());
    auto it = location.find(name);
    if (it == location.end()) throw InputError(folder.string(), fmt::format("missing tensor '{}'", name));
    const auto& file = *files.at(it->second);
    const std::string dtype = file.info(name).dtype;
    if (dtype != "F32" && dtype != "F16" && dtype != "BF16")
      throw InputError(it->second.string(), fmt::format("tensor '{}' has dtype {}; expected F32, F16 or BF16", name, dtype));
    weights[item.key()] = file.load(name).to(torch::kFloat32);
  }
  assign_weights(*model, weights, folder.string());
  return model;
}

void write_hf_folder(LlamaImpl& model, const fs::path& folder, const fs::path& tokenizer) {
  fs::create_directories(folder);
  const LlamaConfig& config = model.config();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_parameters()) {
    if (item.key().find(".adapter.") != std::string::npos) continue;
    torch::Tensor w = item.value().detach().to(torch::kCPU).contiguous();
    if (config.rope_interleaved && is_rotary_weight(item.key())) {
      const bool is_q = item.key().find("q_proj") != std::string::npos;
      w = permute_rotary_rows(w, is_q ? config.n_heads : config.n_kv_heads);
    }
    tensors.emplace_back(hf_name(item.key()), w);
  }
  write_safetensors(folder / "model.safetensors", tensors, {{"format", "pt"}});
  LlamaConfig hf = config;
  hf.rope_interleaved = false;
  std::ofstream(folder / "config.json") << hf_config_json(hf).dump(2) << "\n";
  if (!tokenizer.empty()) fs::copy_file(tokenizer, folder / "tokenizer.model", fs::copy_options::overwrite_existing);
}

}  // namespace peftlab

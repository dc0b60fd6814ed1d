#include "core/hf_checkpoint.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

#include "core/encoder.h"
#include "core/errors.h"
#include "core/model_io.h"
#include "core/safetensors.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

// The slot a parameter belongs to ("layers.0.self_attn.q_proj.weight" -> "layers.0.self_attn.q_proj"), or "".
std::string slot_of(const std::string& parameter, const std::set<std::string>& slots) {
  const auto dot = parameter.rfind('.');
  if (dot == std::string::npos) return {};
  std::string owner = parameter.substr(0, dot);
  return slots.count(owner) ? owner : std::string();
}

// The key under which the file holds `key`: itself, else the names older or bare checkpoints use, as
// transformers accepts them: LayerNorm.gamma/beta for LayerNorm.weight/bias (BERT's original release), and the
// body's keys without its prefix ("bert.") in a file saved from the bare model class.
std::string stored_key(const std::string& key, const std::map<std::string, fs::path>& location) {
  auto legacy = [](std::string k) {
    for (auto [now, then] : {std::pair<const char*, const char*>{"LayerNorm.weight", "LayerNorm.gamma"},
                             std::pair<const char*, const char*>{"LayerNorm.bias", "LayerNorm.beta"}}) {
      const std::string suffix = now;
      if (k.size() >= suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0)
        return k.substr(0, k.size() - suffix.size()) + then;
    }
    return k;
  };
  std::vector<std::string> candidates = {key, legacy(key)};
  if (const auto dot = key.find('.'); dot != std::string::npos && key.rfind("model.", 0) != 0 &&
                                      key.rfind("lm_head", 0) != 0) {
    candidates.push_back(key.substr(dot + 1));
    candidates.push_back(legacy(key.substr(dot + 1)));
  }
  for (const auto& candidate : candidates)
    if (location.count(candidate)) return candidate;
  return key;
}

}  // namespace

Backbone load_hf_model(const fs::path& folder) {
  BackboneConfigPtr config = read_backbone_config(folder / "config.json");
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
  // Every tensor the config implies, checked against the headers before anything is allocated.
  for (const auto& p : config->parameter_shapes()) {
    const std::string key = stored_key(config->hf_key(p.name), location);
    auto it = location.find(key);
    if (it == location.end()) throw InputError(folder.string(), fmt::format("missing tensor '{}'", key));
    const auto& info = files.at(it->second)->info(key);
    if (info.dtype != "F32" && info.dtype != "F16" && info.dtype != "BF16" && info.dtype != "F64")
      throw InputError(it->second.string(),
                       fmt::format("tensor '{}' has dtype {}; expected F32, F16, BF16 or F64", key, info.dtype));
    if (info.shape != p.shape)
      throw InputError(it->second.string(), fmt::format("tensor '{}' has shape [{}]; {} implies [{}]", key,
                                                        fmt::join(info.shape, ", "), (folder / "config.json").string(),
                                                        fmt::join(p.shape, ", ")));
  }
  Backbone model = config->build();
  std::map<std::string, torch::Tensor> weights;
  for (const auto& p : config->parameter_shapes()) {
    const std::string key = stored_key(config->hf_key(p.name), location);
    weights[p.name] = files.at(location.at(key))->load(key).to(torch::kFloat32);
  }
  assign_weights(*model, weights, folder.string());
  // Head tensors the family's Python class takes from the checkpoint (BERT's pooler), when the file has them.
  if (auto* encoder = dynamic_cast<EncoderImpl*>(model.get())) {
    std::map<std::string, torch::Tensor> head;
    for (const auto& key : encoder->encoder_config().checkpoint_head_keys()) {
      auto it = location.find(key);
      if (it != location.end()) head[key] = files.at(it->second)->load(key).to(torch::kFloat32);
    }
    encoder->set_checkpoint_head_tensors(std::move(head));
  }
  return model;
}

void write_hf_folder(BackboneImpl& model, const fs::path& folder, const fs::path& tokenizer) {
  fs::create_directories(folder);
  const BackboneConfig& config = model.config();
  std::set<std::string> slots;
  for (const auto& s : model.slots()) slots.insert(s->slot_name());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_parameters()) {
    if (item.key().find(".adapter.") != std::string::npos) continue;
    torch::Tensor w = item.value().detach().to(torch::kCPU).contiguous();
    const std::string slot = slot_of(item.key(), slots);
    if (!slot.empty()) w = config.output_rows_to_hf(slot, w, /*to_hf=*/true).contiguous();
    tensors.emplace_back(config.hf_key(item.key()), w);
  }
  write_safetensors(folder / "model.safetensors", tensors, {{"format", "pt"}});
  std::ofstream(folder / "config.json") << config.to_hf_json().dump(2) << "\n";
  if (!tokenizer.empty()) fs::copy_file(tokenizer, folder / "tokenizer.model", fs::copy_options::overwrite_existing);
}

}  // namespace peftlab

// peftlab logits: a model's causal-LM logits for given token ids, written as safetensors. It needs no tokenizer,
// so that another framework's logits on the same ids can be compared exactly (scripts/hf_parity.py).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/errors.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

struct LogitsArgs {
  std::string model, adapter, input, out;
};

// Reads {"input_ids": [[...], ...], "attention_mask": [[...], ...]} (the mask is optional: all ones) into (B, T)
// int64 tensors. Rows must have equal lengths.
std::pair<torch::Tensor, torch::Tensor> read_ids(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, fmt::format("not valid JSON: {}", e.what()));
  }
  auto matrix = [&](const char* key, bool required) -> torch::Tensor {
    if (!doc.is_object() || !doc.contains(key)) {
      if (required) throw InputError(path, fmt::format("no \"{}\"", key));
      return {};
    }
    const auto& rows = doc.at(key);
    if (!rows.is_array() || rows.empty() || !rows[0].is_array() || rows[0].empty())
      throw InputError(path, fmt::format("\"{}\" must be a non-empty list of non-empty lists of integers", key));
    const size_t width = rows[0].size();
    std::vector<int64_t> values;
    for (const auto& row : rows) {
      if (!row.is_array() || row.size() != width)
        throw InputError(path, fmt::format("\"{}\": every row must have {} entries", key, width));
      for (const auto& v : row) {
        if (!v.is_number_integer()) throw InputError(path, fmt::format("\"{}\": entries must be integers", key));
        values.push_back(v.get<int64_t>());
      }
    }
    return torch::tensor(values, torch::kInt64).reshape({static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)});
  };
  auto ids = matrix("input_ids", true);
  auto mask = matrix("attention_mask", false);
  if (mask.defined() && mask.sizes() != ids.sizes())
    throw InputError(path, "\"attention_mask\" must have the shape of \"input_ids\"");
  return {ids, mask};
}

std::function<int()> setup_logits(CLI::App& cmd) {
  auto args = std::make_shared<LogitsArgs>();
  cmd.add_option("--model,-m", args->model, "llama2.c checkpoint file or Hugging Face layout folder")->required();
  cmd.add_option("--adapter", args->adapter, "An exported adapter folder (PEFT layout) to attach to the model");
  cmd.add_option("--input", args->input, "JSON file: {\"input_ids\": [[...]], \"attention_mask\": [[...]]}")
      ->required();
  cmd.add_option("--out,-o", args->out, "safetensors file to write (tensor \"logits\", float32, (B, T, vocab))")
      ->required();
  return [args] {
    auto [ids, mask] = read_ids(args->input);
    Backbone model = load_model(args->model);
    if (!model->config().is_decoder())
      throw InputError(args->model, model->config().model_type() + " is an encoder: it has no LM logits");
    model->eval();
    if (!args->adapter.empty()) load_peft_adapter(*model, args->adapter);
    const int64_t vocab = model->config().vocab_size;
    if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab)
      throw InputError(args->input, fmt::format("token ids must lie in [0, {})", vocab));
    if (ids.size(1) > model->config().max_position_embeddings)
      throw InputError(args->input, fmt::format("{} positions exceed the model's context of {}", ids.size(1),
                                                model->config().max_position_embeddings));
    torch::NoGradGuard no_grad;
    BackboneInputs inputs;
    inputs.input_ids = ids;
    inputs.attention_mask = mask;
    auto logits = model->logits(model->hidden_states(inputs)).to(torch::kFloat32).contiguous();
    write_safetensors(args->out, {{"logits", logits}});
    return 0;
  };
}

}  // namespace

PEFTLAB_REGISTER_VERB("logits", "Write a model's logits for given token ids (safetensors)", setup_logits);

}  // namespace peftlab::cli

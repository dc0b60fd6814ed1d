#include "core/model_io.h"

#include <fmt/ranges.h>

#include "core/errors.h"
#include "core/hf_checkpoint.h"
#include "core/llama2c.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {
void require_exists(const fs::path& path) {
  if (!fs::exists(path)) throw InputError(path.string(), "no such file or folder");
}
}  // namespace

BackboneConfigPtr read_model_config(const fs::path& model_path) {
  require_exists(model_path);
  if (fs::is_directory(model_path)) return read_backbone_config(model_path / "config.json");
  if (model_path.filename() == "config.json") return read_backbone_config(model_path);
  return read_llama2c_config(model_path);
}

Backbone load_model(const fs::path& model_path) {
  require_exists(model_path);
  if (fs::is_directory(model_path)) return load_hf_model(model_path);
  return load_llama2c(model_path);
}

fs::path default_tokenizer_path(const fs::path& model_path) {
  if (fs::is_directory(model_path)) return find_tokenizer_file(model_path);
  // A llama2.c file: tokenizer.model beside it, else llama2.c's tok<vocab>.model.
  std::vector<fs::path> candidates{model_path.parent_path() / "tokenizer.model"};
  if (!fs::exists(model_path)) return {};
  try {
    candidates.push_back(model_path.parent_path() / fmt::format("tok{}.model", read_llama2c_config(model_path)->vocab_size));
  } catch (const InputError&) {
    // The model itself is unreadable; loading it reports that.
  }
  for (const auto& c : candidates)
    if (fs::exists(c)) return c;
  return {};
}

LoadedModel load_model_and_tokenizer(const fs::path& model_path, const fs::path& tokenizer_path) {
  if (!fs::exists(model_path)) throw InputError(model_path.string(), "no such file or folder");
  fs::path tok = tokenizer_path.empty() ? default_tokenizer_path(model_path) : tokenizer_path;
  if (tok.empty())
    throw InputError(model_path.string(), "no tokenizer found beside the model (tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt); pass --tokenizer");
  LoadedModel loaded;
  // The tokenizer first: it is cheap, and a mismatch is reported before a large model is read.
  loaded.tokenizer = load_tokenizer(tok);
  check_tokenizer_matches(*loaded.tokenizer, *read_model_config(model_path));
  loaded.model = load_model(model_path);
  loaded.model->eval();
  return loaded;
}

void check_tokenizer_matches(const Tokenizer& tokenizer, const BackboneConfig& config) {
  if (tokenizer.vocab_size() > config.vocab_size)
    throw InputError(tokenizer.path().string(),
                     fmt::format("tokenizer has {} pieces but the model's vocabulary has only {}; they do not belong together",
                                 tokenizer.vocab_size(), config.vocab_size));
}

void assign_weights(BackboneImpl& model, const std::map<std::string, torch::Tensor>& weights, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters(/*recurse=*/true);
  for (auto& item : params) {
    auto it = weights.find(item.key());
    if (it == weights.end()) throw InputError(source, fmt::format("missing tensor '{}'", item.key()));
    const auto& source_tensor = it->second;
    if (source_tensor.sizes() != item.value().sizes())
      throw InputError(source, fmt::format("tensor '{}' has shape {}, the model expects {}", item.key(),
                                           fmt::join(source_tensor.sizes(), "x"), fmt::join(item.value().sizes(), "x")));
    auto converted = source_tensor.to(item.value().scalar_type());
    if (!torch::isfinite(converted).all().item<bool>())
      throw InputError(source, fmt::format("tensor '{}' holds NaN or infinite values", item.key()));
    item.value().copy_(converted);
  }
}

}  // namespace peftlab

#include "methods/registry.h"

#include "core/suggest.h"
#include "methods/bora.h"
#include "methods/dora.h"
#include "methods/full.h"
#include "methods/lora.h"
#include "methods/pissa.h"
#include "methods/vera.h"

namespace peftlab {

const std::vector<MethodInfo>& method_registry() {
  // The one list of built-ins, in display order. A new method adds one line here.
  static const std::vector<MethodInfo> registry = {
      {"full", "full fine-tuning: every backbone weight trains", make_full_method, nullptr},
      {"lora", "LoRA: W' = W0 + s B A", make_lora_method, lora_from_peft_config},
      {"dora", "DoRA: W' = diag(m) V / ||V||_row, V = W0 + s B A", make_dora_method, dora_from_peft_config},
      {"bora", "BoRA: row and column magnitudes around V = W0 + s B A", make_bora_method, nullptr},
      {"pissa", "PiSSA: LoRA from the top-r SVD of W0, W0 replaced by the residual", make_pissa_method, nullptr},
      {"vera", "VeRA: W' = W0 + diag(lambda_b) B diag(lambda_d) A, A and B frozen and shared", make_vera_method,
       vera_from_peft_config},
  };
  return registry;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& info : method_registry()) names.push_back(info.name);
  return names;
}

std::unique_ptr<Method> make_method(Options& options) {
  auto name = options.require<std::string>("name");
  for (const auto& info : method_registry()) {
    if (info.name != name) continue;
    auto method = info.create(options);
    options.finish();
    return method;
  }
  throw InputError(options.file(), options.path() + ".name: " + unknown_name_message("method", name, method_names()),
                   Options::line_of(options.node()["name"]));
}

std::unique_ptr<Method> make_method(const YAML::Node& mapping, const std::string& file, const std::string& path) {
  Options options(mapping, file, path);
  return make_method(options);
}

std::unique_ptr<Method> make_method_from_yaml(const std::string& yaml, const std::string& file) {
  YAML::Node node;
  try {
    node = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(file, "method: not valid YAML: " + e.msg, e.mark.line >= 0 ? e.mark.line + 1 : 0);
  }
  return make_method(node, file);
}

}  // namespace peftlab

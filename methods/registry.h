// The method registry: unique names, an explicit list of built-ins (static-initialisation registration would
// be dropped by the linker from the static library), and strict construction from a spec's `method` mapping.
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/options.h"
#include "methods/method.h"

namespace peftlab {

struct MethodInfo {
  std::string name;
  std::string summary;  // one line for listings
  // Reads the method's own keys from `options` (the `name` key is already consumed); finish() is called after.
  std::function<std::unique_ptr<Method>(Options& options)> create;
  // The method mapping of an adapter_config.json written by HF PEFT for this method (PEFT's own fields, no
  // "peftlab" block); nullopt when the config describes another method. Empty: PEFT has no such adapter.
  std::function<std::optional<YAML::Node>(const nlohmann::json& config, const std::string& file)> from_peft_config;
};

// Every registered method, in display order (tables, figures and listings follow it).
const std::vector<MethodInfo>& method_registry();
std::vector<std::string> method_names();

// Builds a method from a `method` mapping (`name` plus the method's options). Unknown method names and unknown
// keys are InputErrors naming `options.file()` and the line, with a did-you-mean suggestion.
std::unique_ptr<Method> make_method(Options& options);
std::unique_ptr<Method> make_method(const YAML::Node& mapping, const std::string& file,
                                    const std::string& path = "method");
// Convenience for tools and tests: "{name: lora, rank: 8}".
std::unique_ptr<Method> make_method_from_yaml(const std::string& yaml, const std::string& file = "<method>");

}  // namespace peftlab

// `peftlab methods [--json]`: the method registry in display order, each method with its summary, default
// label and every option with its default (what `make_method` reads back). The analysis reads the order here.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "methods/registry.h"
#include "tools/cli.h"

namespace peftlab::cli {
namespace {

nlohmann::json registry_json() {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& info : method_registry()) {
    auto method = make_method_from_yaml(fmt::format("{{name: {}}}", info.name), "<registry>");
    auto defaults = method->to_json();
    defaults.erase("name");
    if (!method->trains_base_weights() && !defaults.contains("targets")) defaults["targets"] = "the family's default";
    list.push_back({{"name", info.name},
                    {"summary", info.summary},
                    {"default_label", method->label()},
                    {"options", defaults},
                    {"peft_type", method->trains_base_weights()
                                      ? nlohmann::json(nullptr)
                                      : nlohmann::json(method->peft_config_fields().value("peft_type", ""))},
                    {"reads_peft_adapters", static_cast<bool>(info.from_peft_config)}});
  }
  return list;
}

int list_methods(bool json) {
  auto list = registry_json();
  if (json) {
    std::cout << list.dump(2) << "\n";
    return 0;
  }
  for (const auto& m : list) {
    std::cout << fmt::format("{:<8} {}\n", m["name"].get<std::string>(), m["summary"].get<std::string>());
    std::cout << fmt::format("         default label: {}\n", m["default_label"].get<std::string>());
    for (const auto& [key, value] : m["options"].items())
      std::cout << fmt::format("         {}: {}\n", key, value.dump());
  }
  return 0;
}

std::function<int()> setup_methods(CLI::App& cmd) {
  auto json = std::make_shared<bool>(false);
  cmd.add_flag("--json", *json, "Print the registry as JSON");
  return [json] { return list_methods(*json); };
}

PEFTLAB_REGISTER_VERB("methods", "List the fine-tuning methods with their options and defaults", setup_methods);

}  // namespace
}  // namespace peftlab::cli

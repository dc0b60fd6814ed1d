#include "experiments/registries.h"

#include "core/errors.h"
#include "experiments/spec.h"
#include "methods/registry.h"
#include "tasks/task.h"

namespace peftlab {

void connect_spec_to_registries() {
  spec_hooks().method_names = method_names();
  spec_hooks().task_names = task_names();
  spec_hooks().method_label = [](const YAML::Node& entry) {
    try {
      return make_method(YAML::Clone(entry), "<label>")->default_label();
    } catch (const InputError&) {
      return entry["name"].Scalar();  // the validator reports what is wrong with the entry, with its line
    }
  };
  spec_hooks().method_accepts = [](const std::string& name, const std::string& key) {
    // A method has the options its defaults list, plus targets and (with LoRA's scaling) overrides, which its
    // defaults leave out when empty.
    auto method = make_method_from_yaml("{name: " + name + "}", "<sweep>");
    auto defaults = method->to_json();
    if (key == "targets") return !method->trains_base_weights();
    if (key == "overrides") return defaults.contains("alpha");
    return key != "name" && defaults.contains(key);
  };
  register_section_validator("method", [](Options& options) { make_method(options); });
  register_section_validator("task", [](Options& options) { make_task(options); });
}

}  // namespace peftlab

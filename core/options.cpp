#include "core/options.h"

#include "core/suggest.h"

namespace peftlab {

Options::Options(YAML::Node node, std::string file, std::string path)
    : node_(node), file_(std::move(file)), path_(std::move(path)) {
  if (node_ && !node_.IsNull() && !node_.IsMap())
    throw InputError(file_, fmt::format("{}: expected a mapping of options, got '{}'", path_, describe(node_)),
                     line_of(node_));
}

long Options::line_of(const YAML::Node& node) {
  if (!node) return 0;
  long line = node.Mark().line;
  return line >= 0 ? line + 1 : 0;  // yaml-cpp counts from 0; a node built in code has no mark
}

std::string Options::describe(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "null";
}

bool Options::has(const std::string& key) const {
  if (!node_ || !node_.IsMap()) return false;
  YAML::Node value = node_[key];
  return value && !value.IsNull();
}

Options Options::child(const std::string& key) {
  declared_.insert(key);
  YAML::Node value = node_ ? node_[key] : YAML::Node();
  return Options(value, file_, path_.empty() ? key : path_ + "." + key);
}

YAML::Node Options::raw(const std::string& key) {
  declared_.insert(key);
  return node_ ? node_[key] : YAML::Node();
}

void Options::finish() const {
  if (!node_ || !node_.IsMap()) return;
  std::vector<std::string> known(declared_.begin(), declared_.end());
  for (const auto& entry : node_) {
    auto key = entry.first.as<std::string>();
    if (declared_.count(key)) continue;
    std::string full = path_.empty() ? key : path_ + "." + key;
    std::string message = fmt::format("unknown key '{}'", full);
    std::string guess = closest_match(key, known);
    if (!guess.empty()) message += fmt::format(" (did you mean '{}'?)", guess);
    throw InputError(file_, message, line_of(entry.first));
  }
}

}  // namespace peftlab

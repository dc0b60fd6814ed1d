// Strict reading of a YAML mapping of options (a method's, a task's, a spec section's): every key must be
// consumed, an unknown key is an InputError naming its path, line and the closest valid key, and a value of
// the wrong type names its line. Method plugins and tasks read their options through this, so every
// section of a spec is checked the same way.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/errors.h"

namespace peftlab {

class Options {
 public:
  // `file` names the YAML file for messages; `path` is the dotted path of this mapping ("method", "train").
  // A null node reads as an empty mapping.
  Options(YAML::Node node, std::string file, std::string path);

  bool has(const std::string& key) const;

  template <typename T>
  T get(const std::string& key, const T& fallback) {
    auto v = get_optional<T>(key);
    return v ? *v : fallback;
  }

  template <typename T>
  T require(const std::string& key) {
    auto v = get_optional<T>(key);
    if (!v) throw InputError(file_, fmt::format("{}: missing required key '{}'", path_, key), line_of(node_));
    return *v;
  }

  template <typename T>
  std::optional<T> get_optional(const std::string& key) {
    declared_.insert(key);
    YAML::Node value = node_[key];
    if (!value || value.IsNull()) return std::nullopt;
    try {
      return value.as<T>();
    } catch (const YAML::Exception&) {
      throw InputError(file_, fmt::format("{}.{}: expected {}, got '{}'", path_, key, type_name<T>(), describe(value)),
                       line_of(value));
    }
  }

  // A sub-mapping, read strictly in its turn.
  Options child(const std::string& key);
  // The raw node of a key (marks it as known).
  YAML::Node raw(const std::string& key);

  // Throws for the first key that no get/require/child/raw asked for, suggesting the closest asked one.
  void finish() const;

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  YAML::Node node() const { return node_; }
  long line() const { return line_of(node_); }
  static long line_of(const YAML::Node& node);

 private:
  template <typename T>
  static const char* type_name();
  static std::string describe(const YAML::Node& node);

  YAML::Node node_;
  std::string file_, path_;
  std::set<std::string> declared_;
};

template <typename T>
const char* Options::type_name() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
  else return "a value of another type";
}

}  // namespace peftlab

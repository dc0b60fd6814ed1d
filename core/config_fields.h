// Typed, bounded reads of config.json fields for the family config readers: an absent or null field keeps
// the family's default; a wrong type, a non-positive size or a value beyond the sanity bounds is an
// InputError naming the file and the field.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/backbone.h"
#include "core/errors.h"

namespace peftlab {

inline bool has_field(const nlohmann::json& config, const char* key) {
  return config.contains(key) && !config.at(key).is_null();
}

// A config's size already read: positive and no larger than `max`, else an InputError naming the field.
inline void check_size(int64_t value, const char* name, int64_t max, const std::string& source) {
  if (value <= 0) input_error(source, "field '{}' must be positive, got {}", name, value);
  if (value > max) input_error(source, "field '{}' is {}, beyond the sanity bound {}", name, value, max);
}

// The sizes every family has, positive and within the sanity bounds: the config's hidden size, layers and
// vocabulary, and the family's intermediate size, attention heads and position table (config.json's
// max_position_embeddings).
inline void check_common_sizes(const BackboneConfig& config, int64_t intermediate_size, int64_t num_attention_heads,
                               int64_t position_table_size, const std::string& source) {
  check_size(config.hidden_size, "hidden_size", kMaxDimension, source);
  check_size(intermediate_size, "intermediate_size", kMaxDimension, source);
  check_size(config.num_hidden_layers, "num_hidden_layers", kMaxLayers, source);
  check_size(num_attention_heads, "num_attention_heads", kMaxDimension, source);
  check_size(config.vocab_size, "vocab_size", kMaxDimension, source);
  check_size(position_table_size, "max_position_embeddings", kMaxDimension, source);
}

// A positive integer no larger than `max`.
inline int64_t size_field(const nlohmann::json& config, const char* key, int64_t fallback, int64_t max,
                          const std::string& source) {
  if (!has_field(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_number_integer()) input_error(source, "field '{}' must be an integer, got {}", key, v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max))
    input_error(source, "field '{}' is {}, beyond the sanity bound {}", key, v.dump(), max);
  const int64_t value = v.get<int64_t>();
  check_size(value, key, max, source);
  return value;
}

inline double number_field(const nlohmann::json& config, const char* key, double fallback, const std::string& source) {
  if (!has_field(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_number()) input_error(source, "field '{}' must be a number, got {}", key, v.dump());
  return v.get<double>();
}

inline bool bool_field(const nlohmann::json& config, const char* key, bool fallback, const std::string& source) {
  if (!has_field(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_boolean()) input_error(source, "field '{}' must be true or false, got {}", key, v.dump());
  return v.get<bool>();
}

inline std::string string_field(const nlohmann::json& config, const char* key, const std::string& fallback,
                                const std::string& source) {
  if (!has_field(config, key)) return fallback;
  const auto& v = config.at(key);
  if (!v.is_string()) input_error(source, "field '{}' must be a string, got {}", key, v.dump());
  return v.get<std::string>();
}

}  // namespace peftlab

// "Did you mean" suggestions for unknown names (methods, tasks, spec keys), as lm-eval-harness does.
#pragma once

#include <string>
#include <vector>

namespace peftlab {

// Levenshtein distance between two strings.
size_t edit_distance(const std::string& a, const std::string& b);

// The closest candidate to `name`, or "" when none is close enough to be a plausible typo.
std::string closest_match(const std::string& name, const std::vector<std::string>& candidates);

// "unknown method 'lorra' (known: bora, dora, full, lora; did you mean 'lora'?)"
std::string unknown_name_message(const std::string& kind, const std::string& name,
                                 std::vector<std::string> known);

}  // namespace peftlab

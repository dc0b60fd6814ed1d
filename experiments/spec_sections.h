// What the spec loader (experiments/spec.cpp) shares with the section readers (experiments/spec_sections.cpp).
#pragma once

#include <string>

#include "core/options.h"

namespace peftlab {

// InputError "<section>.<key>: <what>" at the key's line (the section's line when the key is absent).
[[noreturn]] void bad_value(const Options& o, const std::string& key, const std::string& what);

}  // namespace peftlab

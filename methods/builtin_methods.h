// Factories of the built-in methods, listed in methods/registry.cpp.
#pragma once

#include <memory>

#include "core/options.h"
#include "methods/method.h"

namespace peftlab {

std::unique_ptr<Method> make_full_method(Options& options);
std::unique_ptr<Method> make_lora_method(Options& options);
std::unique_ptr<Method> make_dora_method(Options& options);
std::unique_ptr<Method> make_bora_method(Options& options);

}  // namespace peftlab

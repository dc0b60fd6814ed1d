// Full fine-tuning: no adapter; every backbone weight trains (the baseline every PEFT table starts with).
#pragma once

#include <memory>

#include "core/options.h"
#include "methods/method.h"

namespace peftlab {

std::unique_ptr<Method> make_full_method(Options& options);

}  // namespace peftlab

// The text `peftlab plan` prints for one model config and method: adapted modules grouped by type (count,
// rank, shape), trainable parameters and their share.
#pragma once

#include <string>

#include "core/backbone.h"
#include "methods/adaptation.h"

namespace peftlab {

// "1,234,567"
std::string with_thousands(int64_t n);

std::string describe_plan(const BackboneConfig& config, const Method& method);
std::string describe_plan(const BackboneConfig& config, const AdaptationPlan& plan, const Method& method);

}  // namespace peftlab

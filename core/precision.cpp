#include "core/precision.h"

#include <ATen/autocast_mode.h>

#include <stdexcept>

namespace peftlab {

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw std::invalid_argument("unknown precision '" + name + "' (fp32 or bf16)");
}

std::string precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

AutocastState AutocastState::current() {
  AutocastState s;
  s.cpu = at::autocast::is_cpu_enabled();
  s.cuda = at::autocast::is_enabled();
  s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
  return s;
}

AutocastState AutocastState::of(Precision precision) {
  AutocastState s;
  s.cpu = s.cuda = precision == Precision::bf16;
  s.cpu_dtype = s.cuda_dtype = at::kBFloat16;
  return s;
}

namespace {
void apply(const AutocastState& s) {
  at::autocast::set_cpu_enabled(s.cpu);
  at::autocast::set_enabled(s.cuda);
  at::autocast::set_autocast_cpu_dtype(s.cpu_dtype);
  at::autocast::set_autocast_gpu_dtype(s.cuda_dtype);
}
}  // namespace

AutocastScope::AutocastScope(const AutocastState& state) : previous_(AutocastState::current()) {
  apply(state);
  // Nesting counts scopes that cast, so the cache of cast weights is dropped when the outermost one ends.
  if (state.cpu || state.cuda) {
    at::autocast::increment_nesting();
    nested_ = true;
  }
}

AutocastScope::~AutocastScope() {
  if (nested_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  apply(previous_);
}

}  // namespace peftlab

// libFuzzer entry point for tsv_body (fuzz/targets.h): InputError is a clean refusal; an InvariantBroken or
// any other exception escaping, a sanitizer report or a signal is a crash.
#define PEFTLAB_FUZZ_TABLES
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return peftlab::fuzz::report(peftlab::fuzz::tsv_body(data, size));
}

// libFuzzer entry point for tokenizer_json_body (fuzz/targets.h): InputError is a clean refusal; an
// InvariantBroken or any other exception escaping, a sanitizer report, a signal or a hang is a crash.
#define PEFTLAB_FUZZ_TOKENIZER
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return peftlab::fuzz::report(peftlab::fuzz::tokenizer_json_body(data, size));
}

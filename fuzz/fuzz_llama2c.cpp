// libFuzzer entry point for llama2c_body (fuzz/targets.h): InputError is a clean refusal; an InvariantBroken or
// any other exception escaping, a sanitizer report or a signal is a crash.
#define PEFTLAB_FUZZ_LLAMA2C
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);  // tiny models; one thread keeps the nice'd runs from competing with themselves
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return peftlab::fuzz::report(peftlab::fuzz::llama2c_body(data, size));
}

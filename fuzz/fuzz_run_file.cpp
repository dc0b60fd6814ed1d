// libFuzzer entry point for run_file_body (fuzz/targets.h): InputError is a clean refusal; an InvariantBroken or
// any other exception escaping, a sanitizer report, a signal or a hang (libFuzzer's -timeout) is a crash.
#define PEFTLAB_FUZZ_RUN_FILE
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return peftlab::fuzz::report(peftlab::fuzz::run_file_body(data, size));
}

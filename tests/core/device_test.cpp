// The compute device: training refuses every CUDA device (only `peftlab bench` uses the GPU), with a message
// that says why; the bench's device parser accepts CUDA only where this LibTorch has it and a device is visible.
#include <gtest/gtest.h>

#include <string>

#include "core/errors.h"
#include "core/runtime.h"

namespace peftlab {
namespace {

// The message of the InputError `f` throws, or "" when it throws none.
template <typename F>
std::string input_error_of(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Device, CpuAndAutoTrainOnTheCpu) {
  EXPECT_EQ(compute_device("cpu", "--device"), torch::Device(torch::kCPU));
  EXPECT_EQ(compute_device("auto", "--device"), torch::Device(torch::kCPU));
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
}

TEST(Device, TrainingRefusesCudaAndSaysWhy) {
  for (const std::string name : {"cuda", "cuda:0", "cuda:3"}) {
    const std::string message = input_error_of([&] { compute_device(name, "s.yaml: model.device"); });
    ASSERT_FALSE(message.empty()) << name;
    EXPECT_EQ(message.rfind("s.yaml: model.device: device '" + name + "'", 0), 0u) << message;
    if (!built_with_cuda()) {
      EXPECT_EQ(message, "s.yaml: model.device: device '" + name +
                             "' is not available: this LibTorch build has no CUDA (use cpu)");
    } else if (cuda_usable() && name == "cuda") {
      EXPECT_NE(message.find("only `peftlab bench` uses the GPU"), std::string::npos) << message;
    }
  }
}

TEST(Device, UnknownNamesAreRefusedEverywhere) {
  for (const std::string name : {"gpu", "cuda:", "cuda:x", "CPU", "mps", ""}) {
    EXPECT_EQ(input_error_of([&] { compute_device(name, "--device"); }),
              "--device: unknown device '" + name + "' (cpu, cuda, cuda:N or auto)");
    EXPECT_EQ(input_error_of([&] { parse_device(name); }),
              "--device: unknown device '" + name + "' (cpu, cuda, cuda:N or auto)");
  }
}

TEST(Device, BenchTakesCudaOnlyWhereItExists) {
  if (!cuda_usable()) {
    EXPECT_NE(input_error_of([] { parse_device("cuda"); }).find("device 'cuda' is not available"), std::string::npos);
    EXPECT_EQ(parse_device("auto"), torch::Device(torch::kCPU));
    return;
  }
  EXPECT_EQ(parse_device("cuda"), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(parse_device("auto"), torch::Device(torch::kCUDA, 0));
  EXPECT_NE(input_error_of([] { parse_device("cuda:999"); }).find("CUDA device(s)"), std::string::npos);
}

}  // namespace
}  // namespace peftlab

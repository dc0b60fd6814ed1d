#include "experiments/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <string>

#include "core/errors.h"

namespace peftlab {

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

DataParallel::DataParallel() = default;
DataParallel::~DataParallel() = default;
DataParallel::DataParallel(DataParallel&&) noexcept = default;
DataParallel& DataParallel::operator=(DataParallel&&) noexcept = default;

namespace {

int64_t env_integer(const char* name, int64_t fallback, int64_t low, int64_t high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value < low || value > high)
    throw InputError(std::string("environment ") + name,
                     "'" + std::string(text) + "' is not an integer in [" + std::to_string(low) + ", " +
                         std::to_string(high) + "]");
  return value;
}

}  // namespace

DataParallel DataParallel::from_environment() {
  DataParallel dp;
  dp.world_size_ = int(env_integer("WORLD_SIZE", 1, 1, 4096));
  dp.rank_ = int(env_integer("RANK", 0, 0, dp.world_size_ - 1));
  if (dp.world_size_ == 1) return dp;
  const char* address = std::getenv("MASTER_ADDR");
  c10d::TCPStoreOptions store_options;
  store_options.port = uint16_t(env_integer("MASTER_PORT", c10d::TCPStoreOptions::kDefaultPort, 1, 65535));
  store_options.isServer = dp.rank_ == 0;
  store_options.numWorkers = size_t(dp.world_size_);
  store_options.timeout = std::chrono::minutes(5);
  dp.group_ = std::make_unique<Group>();
  const std::string host = address != nullptr && *address != '\0' ? address : "127.0.0.1";
  try {
    dp.group_->store = c10::make_intrusive<c10d::TCPStore>(host, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host == "localhost" ? "127.0.0.1" : host));
    options->timeout = std::chrono::minutes(30);  // a slow evaluation on rank 0 must not time the others out
    dp.group_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(dp.group_->store, dp.rank_, dp.world_size_, options);
  } catch (const std::exception& e) {
    throw InputError("MASTER_ADDR " + host + ":" + std::to_string(store_options.port),
                     std::string("cannot join the data-parallel group: ") + e.what());
  }
  return dp;
}

void DataParallel::sum(torch::Tensor& tensor) const {
  if (!enabled()) return;
  std::vector<torch::Tensor> tensors = {tensor};
  group_->group->allreduce(tensors)->wait();
}

double DataParallel::sum(double value) const {
  if (!enabled()) return value;
  auto t = torch::tensor({value}, torch::kFloat64);
  sum(t);
  return t.item<double>();
}

void DataParallel::sum_gradients(const std::vector<torch::Tensor>& parameters) const {
  if (!enabled()) return;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  if (grads.empty()) return;
  std::vector<torch::Tensor> flat_views;
  for (const auto& g : grads) flat_views.push_back(g.reshape({-1}));
  auto flat = torch::cat(flat_views);
  sum(flat);
  int64_t offset = 0;
  for (auto& g : grads) {
    g.copy_(flat.narrow(0, offset, g.numel()).view(g.sizes()));
    offset += g.numel();
  }
}

void DataParallel::broadcast_from_main(const std::vector<torch::Tensor>& tensors) const {
  if (!enabled()) return;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    std::vector<torch::Tensor> one = {t.detach()};
    group_->group->broadcast(one)->wait();
  }
}

std::pair<int64_t, int64_t> DataParallel::slice(int64_t rows) const {
  const int64_t base = rows / world_size_, extra = rows % world_size_;
  const int64_t begin = rank_ * base + std::min<int64_t>(rank_, extra);
  return {begin, begin + base + (rank_ < extra ? 1 : 0)};
}

}  // namespace peftlab

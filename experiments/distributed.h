// Data-parallel training across processes with torch's c10d (Gloo on CPU), started by `peftlab run --nproc N`
// or by an outside launcher (torchrun, srun) that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
//
// Every process builds the same model and the same batch stream; each takes its slice of every global batch
// (rows rank, rank + W, ... are not used: contiguous slices, sizes differing by at most one), computes the
// loss sum over its rows (or tokens), divides by the global count, and the gradients are summed across
// processes before clipping and the optimizer step, so every process takes the same step as one process on
// the whole batch. Evaluation runs on every process (identical weights, identical results); only rank 0
// writes the run file, checkpoints and predictions.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

namespace peftlab {

class DataParallel {
 public:
  // One process (no communication).
  DataParallel();
  ~DataParallel();
  DataParallel(DataParallel&&) noexcept;
  DataParallel& operator=(DataParallel&&) noexcept;

  // From RANK, WORLD_SIZE, MASTER_ADDR (default 127.0.0.1) and MASTER_PORT (default 29500): one process when
  // WORLD_SIZE is unset or 1. Rank 0 hosts the rendezvous (a c10d TCPStore). Malformed values: InputError.
  static DataParallel from_environment();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool enabled() const { return world_size_ > 1; }
  bool is_main() const { return rank_ == 0; }

  // In-place sums across processes (no-ops for one process).
  void sum(torch::Tensor& tensor) const;
  double sum(double value) const;
  // Sums the gradients of `parameters` (one flattened buffer, one all-reduce).
  void sum_gradients(const std::vector<torch::Tensor>& parameters) const;
  // Rank 0's values of `tensors` everywhere.
  void broadcast_from_main(const std::vector<torch::Tensor>& tensors) const;
  bool any(bool flag) const { return sum(flag ? 1.0 : 0.0) > 0; }

  // This process's rows [begin, end) of a batch of `rows` rows.
  std::pair<int64_t, int64_t> slice(int64_t rows) const;

 private:
  struct Group;
  int rank_ = 0, world_size_ = 1;
  std::unique_ptr<Group> group_;
};

}  // namespace peftlab

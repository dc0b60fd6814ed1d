#include "experiments/smoke_profile.h"

namespace peftlab {

std::vector<std::string> smoke_overrides(const std::filesystem::path& spec) {
  return {
      "model.path=${data}/models/stories260K/stories260K.bin",
      "model.tokenizer=${data}/models/stories260K/tok512.model",
      "model.dtype=float32",
      "model.device=cpu",
      "train.precision=fp32",
      // Two steps whatever the spec's run length was written as (steps or epochs, warm-up in steps or as a
      // ratio); null drops the spec's key so that the two forms never meet.
      "train.epochs=null",
      "train.max_steps=2",
      "train.warmup_steps=null",
      "train.warmup_ratio=null",
      "train.eval_every=null",
      "train.save_every=null",
      "train.batch_size=2",
      "train.grad_accum=1",
      "eval.max_examples=1",
      "eval.batch_size=2",
      "seeds=[0]",
      "output.dir=runs/smoke/" + spec.stem().string(),
  };
}

}  // namespace peftlab

// The RoBERTa family (config.json model_type "roberta"): the shared post-LN encoder with RoBERTa's defaults;
// positions count from padding_idx + 1 (pad_token_id, 1 in released models) and padding tokens sit at
// padding_idx, as transformers' create_position_ids_from_input_ids. Its sequence-classification head is
// RobertaClassificationHead: dropout, dense + tanh on the <s> hidden state, dropout, out_proj.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

#include "core/encoder.h"

namespace peftlab {

class RobertaConfig : public EncoderConfig {
 public:
  RobertaConfig();  // transformers' RobertaConfig defaults
  SequenceHead make_head(int64_t num_outputs) const override;
  std::string head_name() const override { return "classifier"; }
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<RobertaConfig>(*this); }
};

// config.json -> RobertaConfig; the registry's reader for "roberta".
std::shared_ptr<BackboneConfig> read_roberta_config(const nlohmann::json& config, const std::string& source);

// RobertaClassificationHead. Parameters dense.{weight,bias} and out_proj.{weight,bias} (Hugging Face:
// classifier.dense.*, classifier.out_proj.*).
class RobertaClassificationHeadImpl : public SequenceHeadImpl {
 public:
  RobertaClassificationHeadImpl(const EncoderConfig& config, int64_t num_outputs);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) override;
  std::string hf_key(const std::string& parameter) const override { return "classifier." + parameter; }
  torch::nn::Linear dense{nullptr}, out_proj{nullptr};

 private:
  double dropout_;
};

}  // namespace peftlab

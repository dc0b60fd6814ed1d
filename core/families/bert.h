// The BERT family (config.json model_type "bert"): the shared post-LN encoder with BERT's defaults, positions
// 0, 1, 2, ... and two token types; its sequence-classification head is transformers'
// BertForSequenceClassification: the pooler (dense + tanh on the [CLS] hidden state), dropout, classifier.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

#include "core/encoder.h"

namespace peftlab {

class BertConfig : public EncoderConfig {
 public:
  BertConfig();  // transformers' BertConfig defaults
  SequenceHead make_head(int64_t num_outputs) const override;
  std::string head_name() const override { return "sequence_head"; }
  std::vector<std::string> checkpoint_head_keys() const override {
    return {"bert.pooler.dense.weight", "bert.pooler.dense.bias"};
  }
  std::shared_ptr<BackboneConfig> clone() const override { return std::make_shared<BertConfig>(*this); }
};

// config.json -> BertConfig; the registry's reader for "bert".
std::shared_ptr<BackboneConfig> read_bert_config(const nlohmann::json& config, const std::string& source);

// BertForSequenceClassification's head. Parameters pooler.dense.{weight,bias} (Hugging Face:
// bert.pooler.dense.*) and classifier.{weight,bias} (classifier.*).
class BertPoolerClassifierImpl : public SequenceHeadImpl {
 public:
  BertPoolerClassifierImpl(const EncoderConfig& config, int64_t num_outputs);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) override;
  std::string hf_key(const std::string& parameter) const override;
  std::shared_ptr<torch::nn::Module> pooler;  // holds "dense", as BertPooler
  torch::nn::Linear pooler_dense{nullptr}, classifier{nullptr};

 private:
  double dropout_;
};

}  // namespace peftlab

// The encoder families (bert, roberta) behind core/backbone.h: published parameter counts of the real configs,
// defaults, key maps, bad configs, folder round trips (also with BERT's legacy gamma/beta names and without the
// body prefix), dropout only in training, and their inputs through the sentence tasks (the tokenizer's
// template with token type ids, longest-first truncation that keeps the specials). The forward pass itself is
// checked against the Python reference in encoder_parity_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "core/backbone.h"
#include "core/data_root.h"
#include "core/encoder.h"
#include "core/errors.h"
#include "core/families/deberta_v2.h"
#include "core/hf_checkpoint.h"
#include "core/model_io.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
#include "experiments/task_model.h"
#include "methods/adaptation.h"
#include "methods/peft_format.h"
#include "methods/registry.h"
#include "tasks/classification.h"
#include "tests/test_support.h"

namespace peftlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

BackboneConfigPtr tiny(const std::string& family, json extra = json::object()) {
  json config{{"model_type", family}, {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
              {"num_attention_heads", 4}, {"vocab_size", 97}, {"max_position_embeddings", 40}};
  config.update(extra);
  return backbone_config_from_json(config, "test config");
}

Backbone tiny_model(const std::string& family, json extra = json::object(), uint64_t seed = 0) {
  torch::manual_seed(seed);
  return tiny(family, std::move(extra))->build();
}

TEST(EncoderFamilies, RealConfigsGiveThePublishedParameterCounts) {
  // BertModel / RobertaModel's num_parameters() (109,482,240 and 124,645,632) less the pooler (768 x 768 + 768),
  // which belongs to BERT's sequence head here and which RoBERTa's classification head does not use.
  const int64_t pooler = 768 * 768 + 768;
  auto bert = read_model_config(data_path("configs/bert-base-uncased"));
  EXPECT_EQ(bert->model_type(), "bert");
  EXPECT_EQ(bert->parameter_count(), 109'482'240 - pooler);
  EXPECT_FALSE(bert->is_decoder());
  auto roberta = read_model_config(data_path("configs/roberta-base"));
  EXPECT_EQ(roberta->model_type(), "roberta");
  EXPECT_EQ(roberta->parameter_count(), 124'645'632 - pooler);
  EXPECT_EQ(roberta->max_position_embeddings, 512);  // 514 rows, positions from padding_idx 1 + 1
}

TEST(EncoderFamilies, DefaultsComeFromTransformersConfigClasses) {
  auto bert = backbone_config_from_json(json{{"model_type", "bert"}}, "bert.json");
  EXPECT_EQ(bert->vocab_size, 30522);
  EXPECT_EQ(bert->hidden_size, 768);
  EXPECT_EQ(bert->num_hidden_layers, 12);
  EXPECT_EQ(bert->max_position_embeddings, 512);
  EXPECT_EQ(bert->to_hf_json()["layer_norm_eps"], 1e-12);
  EXPECT_EQ(bert->to_hf_json()["type_vocab_size"], 2);
  auto roberta = backbone_config_from_json(json{{"model_type", "roberta"}}, "roberta.json");
  EXPECT_EQ(roberta->vocab_size, 50265);
  EXPECT_EQ(roberta->to_hf_json()["pad_token_id"], 1);
  EXPECT_EQ(roberta->max_position_embeddings, 510);  // RobertaConfig's 512 rows less padding_idx + 1
}

TEST(EncoderFamilies, KeyMapsSlotsAndTargetsAreHuggingFaces) {
  for (const std::string family : {"bert", "roberta"}) {
    SCOPED_TRACE(family);
    auto config = tiny(family);
    std::set<std::string> keys;
    for (const auto& p : config->parameter_shapes()) keys.insert(config->hf_key(p.name));
    for (const std::string key : {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                                  "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.bias",
                                  "encoder.layer.1.attention.self.query.bias", "encoder.layer.0.attention.output.dense.weight",
                                  "encoder.layer.0.attention.output.LayerNorm.weight", "encoder.layer.1.intermediate.dense.bias",
                                  "encoder.layer.1.output.dense.weight", "encoder.layer.1.output.LayerNorm.bias"})
      EXPECT_TRUE(keys.count(family + "." + key)) << key;
    EXPECT_EQ(keys.size(), 5u + 2 * 16);
    const auto slots = config->slot_shapes();
    ASSERT_EQ(slots.size(), 12u);
    for (const auto& s : slots) EXPECT_TRUE(s.has_bias) << s.name;
    EXPECT_EQ(slots[4].name, "encoder.layer.0.intermediate.dense");
    EXPECT_EQ(slots[4].out_features, 48);
    EXPECT_EQ(config->hf_module_name(slots[0].name), family + ".encoder.layer.0.attention.self.query");
    EXPECT_EQ(config->default_target_modules(), (std::vector<std::string>{"query", "value"}));
    // The model's parameters are the config's, in the same order.
    auto model = config->build();
    std::vector<std::string> names;
    for (const auto& item : model->named_parameters()) names.push_back(item.key());
    std::vector<std::string> expected;
    for (const auto& p : config->parameter_shapes()) expected.push_back(p.name);
    EXPECT_EQ(names, expected);
    std::vector<std::string> slot_names;
    for (const auto& s : model->slots()) slot_names.push_back(s->slot_name());
    ASSERT_EQ(slot_names.size(), slots.size());
    for (size_t i = 0; i < slots.size(); ++i) EXPECT_EQ(slot_names[i], slots[i].name);
  }
}

TEST(EncoderFamilies, DenseTargetsAllThreeDenseLayersAsPeftDoes) {
  auto model = tiny_model("bert");
  auto method = make_method_from_yaml("{name: lora, rank: 2, targets: [dense]}");
  auto plan = apply_method(*model, *method, 1);
  ASSERT_EQ(plan.slots.size(), 6u);
  EXPECT_EQ(plan.slots[0].slot, "encoder.layer.0.attention.output.dense");
  EXPECT_EQ(plan.slots[1].slot, "encoder.layer.0.intermediate.dense");
  EXPECT_EQ(plan.slots[2].slot, "encoder.layer.0.output.dense");
}

TEST(EncoderFamilies, BadConfigsAreInputErrors) {
  EXPECT_THROW(tiny("bert", {{"hidden_act", "relu"}}), InputError);
  EXPECT_THROW(tiny("bert", {{"position_embedding_type", "relative_key"}}), InputError);
  EXPECT_THROW(tiny("bert", {{"hidden_size", 30}}), InputError);  // not divisible by 4 heads
  EXPECT_THROW(tiny("roberta", {{"max_position_embeddings", 2}}), InputError);  // nothing after padding_idx 1
  EXPECT_THROW(tiny("roberta", {{"pad_token_id", 97}}), InputError);
  EXPECT_THROW(tiny("bert", {{"hidden_dropout_prob", 1.0}}), InputError);
  EXPECT_THROW(tiny("bert", {{"is_decoder", true}}), InputError);
  EXPECT_NO_THROW(tiny("bert", {{"hidden_act", "gelu_new"}}));
}

TEST(EncoderFamilies, RobertaPositionsStartAfterPaddingIdx) {
  auto model = std::dynamic_pointer_cast<EncoderImpl>(tiny_model("roberta"));
  ASSERT_TRUE(model);
  auto ids = torch::tensor({{0, 5, 6, 2}, {0, 7, 2, 1}}, torch::kLong);  // second row padded with pad id 1
  auto positions = model->position_ids(ids);
  EXPECT_TRUE(torch::equal(positions, torch::tensor({{2, 3, 4, 5}, {2, 3, 4, 1}}, torch::kLong))) << positions;
}

TEST(EncoderFamilies, DropoutOnlyInTraining) {
  auto model = tiny_model("roberta", {{"hidden_dropout_prob", 0.3}});
  auto ids = torch::randint(3, 97, {2, 10}, torch::kLong);
  torch::NoGradGuard no_grad;
  model->eval();
  auto a = model->hidden_states(ids), b = model->hidden_states(ids);
  EXPECT_TRUE(torch::equal(a, b));
  model->train();
  EXPECT_FALSE(torch::allclose(model->hidden_states(ids), a));
}

TEST(EncoderFamilies, ActivationCheckpointingGivesTheSameGradients) {
  auto model = tiny_model("bert", {{"hidden_dropout_prob", 0.2}});
  auto ids = torch::randint(3, 97, {2, 9}, torch::kLong);
  auto gradients = [&](bool checkpoint) {
    model->zero_grad();
    model->set_activation_checkpointing(checkpoint);
    torch::manual_seed(5);
    model->hidden_states(ids).pow(2).sum().backward();
    return model->slots()[0]->weight.grad().clone();
  };
  auto plain = gradients(false);
  EXPECT_TRUE(torch::allclose(gradients(true), plain, 1e-5, 1e-6));
}

TEST(EncoderFamilies, FolderRoundTripAlsoWithLegacyNamesAndWithoutPrefix) {
  for (const std::string family : {"bert", "roberta"}) {
    SCOPED_TRACE(family);
    testing::TempDir dir;
    auto model = tiny_model(family, {{"hidden_dropout_prob", 0.0}}, 3);
    model->eval();
    write_hf_folder(*model, dir / "hf");
    auto loaded = load_hf_model(dir / "hf");
    loaded->eval();
    EXPECT_EQ(loaded->config().to_hf_json(), model->config().to_hf_json());
    auto ids = torch::randint(3, 97, {2, 12}, torch::kLong);
    torch::NoGradGuard no_grad;
    const auto expected = model->hidden_states(ids);
    EXPECT_TRUE(torch::equal(loaded->hidden_states(ids), expected));
    // The same tensors as BertModel.save_pretrained wrote them in 2018: no "bert." prefix, LayerNorm.gamma/beta.
    SafetensorsFile file(dir / "hf" / "model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> renamed;
    for (const auto& name : file.names()) {
      std::string key = name.substr(name.find('.') + 1);
      for (auto [now, then] : {std::pair<std::string, std::string>{"LayerNorm.weight", "LayerNorm.gamma"},
                               std::pair<std::string, std::string>{"LayerNorm.bias", "LayerNorm.beta"}})
        if (key.size() > now.size() && key.compare(key.size() - now.size(), now.size(), now) == 0)
          key = key.substr(0, key.size() - now.size()) + then;
      renamed.emplace_back(key, file.load(name));
    }
    fs::create_directories(dir / "legacy");
    fs::copy_file(dir / "hf" / "config.json", dir / "legacy" / "config.json");
    write_safetensors(dir / "legacy" / "model.safetensors", renamed, {});
    auto legacy = load_hf_model(dir / "legacy");
    legacy->eval();
    EXPECT_TRUE(torch::equal(legacy->hidden_states(ids), expected));
  }
}

TEST(EncoderFamilies, EncodersHaveNoLmLogitsAndNoCache) {
  auto model = tiny_model("bert");
  auto ids = torch::randint(3, 97, {1, 5}, torch::kLong);
  EXPECT_THROW(model->forward(ids), std::logic_error);
  KVCache cache;
  EXPECT_THROW(model->hidden_states(ids, 0, &cache), std::invalid_argument);
  auto long_ids = torch::randint(3, 97, {1, 41}, torch::kLong);
  EXPECT_THROW(model->hidden_states(long_ids), std::invalid_argument);
  BackboneInputs inputs;
  inputs.input_ids = ids;
  inputs.token_type_ids = torch::full({1, 5}, 2, torch::kLong);  // BERT has types 0 and 1
  EXPECT_THROW(model->hidden_states(inputs), std::invalid_argument);
}

TEST(EncoderFamilies, TokenTypesChangeBertsOutput) {
  auto model = tiny_model("bert", {{"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0}});
  auto ids = torch::randint(3, 97, {1, 6}, torch::kLong);
  torch::NoGradGuard no_grad;
  BackboneInputs inputs;
  inputs.input_ids = ids;
  const auto zeros = model->hidden_states(inputs);
  inputs.token_type_ids = torch::tensor({{0, 0, 0, 1, 1, 1}}, torch::kLong);
  EXPECT_FALSE(torch::allclose(model->hidden_states(inputs), zeros));
  inputs.token_type_ids = torch::zeros({1, 6}, torch::kLong);
  EXPECT_TRUE(torch::equal(model->hidden_states(inputs), zeros));
}

TEST(EncoderHeads, HuggingFaceNamesAndPeftExport) {
  testing::TempDir dir;
  auto bert = tiny_model("bert");
  auto head = bert->make_sequence_head(3);
  std::set<std::string> keys;
  for (const auto& item : head->named_parameters()) keys.insert(head->hf_key(item.key()));
  EXPECT_EQ(keys, (std::set<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                                         "classifier.bias"}));
  auto roberta = tiny_model("roberta");
  auto roberta_head = roberta->make_sequence_head(1);
  keys.clear();
  for (const auto& item : roberta_head->named_parameters()) keys.insert(roberta_head->hf_key(item.key()));
  EXPECT_EQ(keys, (std::set<std::string>{"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
                                         "classifier.out_proj.bias"}));
  auto method = make_method_from_yaml("{name: lora, rank: 2}");
  apply_method(*bert, *method, 1);
  PeftExportOptions options;
  options.task_type = "SEQ_CLS";
  for (const auto& item : head->named_parameters()) options.modules_to_save[head->hf_key(item.key())] = item.value();
  export_peft_adapter(*bert, *method, dir.path(), options);
  SafetensorsFile weights(dir / "adapter_model.safetensors");
  EXPECT_TRUE(weights.contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
  EXPECT_TRUE(weights.contains("base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"));
  EXPECT_TRUE(weights.contains("base_model.model.bert.pooler.dense.weight"));
  EXPECT_TRUE(weights.contains("base_model.model.classifier.bias"));
  auto config = json::parse(testing::read_file(dir / "adapter_config.json"));
  EXPECT_EQ(config["target_modules"], (json{"query", "value"}));
  // The exported adapter reads back into a fresh model.
  auto fresh = tiny_model("bert");
  EXPECT_NO_THROW(load_peft_adapter(*fresh, dir.path()));
}

TEST(EncoderHeads, HeadsReadTheFirstToken) {
  for (const std::string family : {"bert", "roberta"}) {
    auto model = tiny_model(family);
    auto head = model->make_sequence_head(2);
    head->eval();
    auto hidden = torch::randn({2, 5, 32});
    torch::NoGradGuard no_grad;
    const auto out = head->forward(hidden, torch::ones({2, 5}, torch::kLong));
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 2}));
    auto changed = hidden.clone();
    changed.narrow(1, 1, 4).normal_();
    EXPECT_TRUE(torch::equal(head->forward(changed, torch::ones({2, 5}, torch::kLong)), out)) << family;
  }
}

// ---- DeBERTa-v2 / -v3 ----

json deberta_v3_layout() {
  return {{"model_type", "deberta-v2"}, {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"vocab_size", 97}, {"max_position_embeddings", 64}, {"type_vocab_size", 0},
          {"relative_attention", true}, {"position_buckets", 8}, {"max_relative_positions", 16},
          {"share_att_key", true}, {"pos_att_type", "p2c|c2p"}, {"norm_rel_ebd", "layer_norm"},
          {"position_biased_input", false}};
}

TEST(DebertaV2, LogBucketsOfRelativeDistances) {
  // Worked out in float64 from the bucket rule (mid 4, max 16): |d| <= 4 stays, beyond it
  // ceil(log(|d| / 4) / log(15 / 4) * 3) + 4 with the sign of d.
  const std::vector<int64_t> expected = {0, 1, 2, 3, 4, 5, 5, 6, 6, 6, 7, 7};
  auto relative = deberta_relative_positions(12, 8, 16);
  for (int64_t d = 0; d < 12; ++d) {
    EXPECT_EQ(relative[d][0].item<int64_t>(), expected[size_t(d)]) << d;
    EXPECT_EQ(relative[0][d].item<int64_t>(), -expected[size_t(d)]) << d;
  }
  // Without buckets: plain distances.
  EXPECT_TRUE(torch::equal(deberta_relative_positions(3, -1, 16), torch::tensor({{0, -1, -2}, {1, 0, -1}, {2, 1, 0}})));
}

TEST(DebertaV2, KeysSlotsAndRefusedOptions) {
  auto config = backbone_config_from_json(deberta_v3_layout(), "deberta.json");
  std::set<std::string> keys;
  for (const auto& p : config->parameter_shapes()) keys.insert(config->hf_key(p.name));
  EXPECT_TRUE(keys.count("deberta.encoder.rel_embeddings.weight"));
  EXPECT_TRUE(keys.count("deberta.encoder.LayerNorm.weight"));
  EXPECT_TRUE(keys.count("deberta.encoder.layer.1.attention.self.query_proj.bias"));
  EXPECT_FALSE(keys.count("deberta.embeddings.position_embeddings.weight"));  // position_biased_input false
  EXPECT_FALSE(keys.count("deberta.embeddings.token_type_embeddings.weight"));  // type_vocab_size 0
  EXPECT_FALSE(keys.count("deberta.encoder.layer.0.attention.self.pos_key_proj.weight"));  // share_att_key
  EXPECT_EQ(config->default_target_modules(), (std::vector<std::string>{"query_proj", "value_proj"}));
  auto model = config->build();
  std::vector<std::string> names, expected;
  for (const auto& item : model->named_parameters()) names.push_back(item.key());
  for (const auto& p : config->parameter_shapes()) expected.push_back(p.name);
  EXPECT_EQ(names, expected);
  for (const char* bad : {R"({"conv_kernel_size": 3})", R"({"embedding_size": 16})", R"({"pos_att_type": "p2p"})",
                          R"({"norm_rel_ebd": "batch_norm"})", R"({"max_relative_positions": 4})"}) {
    json c = deberta_v3_layout();
    c.update(json::parse(bad));
    EXPECT_THROW(backbone_config_from_json(c, "deberta.json"), InputError) << bad;
  }
  // The v2 layout: separate position projections for the terms in pos_att_type.
  json v2 = deberta_v3_layout();
  v2.update({{"share_att_key", false}, {"pos_att_type", json::array({"c2p"})}});
  auto separate = backbone_config_from_json(v2, "deberta.json");
  keys.clear();
  for (const auto& p : separate->parameter_shapes()) keys.insert(separate->hf_key(p.name));
  EXPECT_TRUE(keys.count("deberta.encoder.layer.0.attention.self.pos_key_proj.weight"));
  EXPECT_FALSE(keys.count("deberta.encoder.layer.0.attention.self.pos_query_proj.weight"));
}

TEST(DebertaV2, V3IgnoresTokenTypesAndRoundTrips) {
  testing::TempDir dir;
  json layout = deberta_v3_layout();
  layout["hidden_dropout_prob"] = 0.0;
  layout["attention_probs_dropout_prob"] = 0.0;
  torch::manual_seed(2);
  auto model = backbone_config_from_json(layout, "deberta.json")->build();
  auto ids = torch::randint(3, 97, {2, 10}, torch::kLong);
  torch::NoGradGuard no_grad;
  BackboneInputs inputs;
  inputs.input_ids = ids;
  const auto plain = model->hidden_states(inputs);
  inputs.token_type_ids = torch::ones({2, 10}, torch::kLong);
  EXPECT_TRUE(torch::equal(model->hidden_states(inputs), plain));
  write_hf_folder(*model, dir / "hf");
  auto loaded = load_hf_model(dir / "hf");
  EXPECT_EQ(loaded->config().to_hf_json(), model->config().to_hf_json());
  EXPECT_TRUE(torch::equal(loaded->hidden_states(ids), plain));
  auto head = model->make_sequence_head(2);
  std::set<std::string> head_keys;
  for (const auto& item : head->named_parameters()) head_keys.insert(head->hf_key(item.key()));
  EXPECT_EQ(head_keys, (std::set<std::string>{"pooler.dense.weight", "pooler.dense.bias", "classifier.weight",
                                              "classifier.bias"}));
}

// ---- Inputs through the sentence tasks ----

TEST(EncoderInputs, BertPairsThroughTheTemplateWithTokenTypes) {
  auto tokenizer = load_tokenizer(data_path("tokenizers/bert-base-uncased/vocab.txt"));
  SpecialTokenTemplate bert = tokenizer->special_template();
  // [CLS] A [SEP] B [SEP]; the longer text loses its tail first; the specials always stay.
  const int cls = tokenizer->token_id("[CLS]"), sep = tokenizer->token_id("[SEP]");
  auto encoded = template_and_truncate({{10, 11, 12, 13, 14}, {20, 21}}, bert, 8);
  EXPECT_EQ(encoded.ids, (std::vector<int>{cls, 10, 11, 12, sep, 20, 21, sep}));
  EXPECT_EQ(encoded.type_ids, (std::vector<int>{0, 0, 0, 0, 0, 1, 1, 1}));
  encoded = template_and_truncate({{10, 11}}, bert, 8);
  EXPECT_EQ(encoded.ids, (std::vector<int>{cls, 10, 11, sep}));
  EXPECT_EQ(encoded.type_ids, (std::vector<int>(4, 0)));

  // A GLUE pair task set to template inputs writes the type ids into its tokenised examples and batches.
  auto task = make_task_from_yaml("{name: mrpc, max_seq_len: 24, max_eval_examples: 4}");
  auto* sentences = dynamic_cast<SentenceTask*>(task.get());
  ASSERT_NE(sentences, nullptr);
  const std::string decoder_options = task->format_options();
  fit_task_to_backbone(*task, *tiny("bert"), "test");
  EXPECT_TRUE(sentences->template_inputs());
  EXPECT_NE(task->format_options(), decoder_options);  // a separate token cache entry
  auto examples = task->tokenize("dev", task->load("dev"), *tokenizer);
  ASSERT_EQ(examples.size(), 4u);
  for (const auto& e : examples) {
    ASSERT_EQ(e.token_type_ids.size(), e.input_ids.size());
    EXPECT_EQ(e.input_ids.front(), cls);
    EXPECT_EQ(e.input_ids.back(), sep);
    EXPECT_LE(e.input_ids.size(), 24u);
    EXPECT_EQ(e.token_type_ids.front(), 0);
    EXPECT_EQ(e.token_type_ids.back(), 1);
  }
  std::vector<const TokenizedExample*> rows;
  for (const auto& e : examples) rows.push_back(&e);
  Batch batch = collate(rows, LabelKind::Class, tokenizer->pad_id());
  ASSERT_TRUE(batch.token_type_ids.defined());
  EXPECT_EQ(batch.token_type_ids.sizes(), batch.input_ids.sizes());
  EXPECT_EQ(batch.token_type_ids.masked_select(batch.attention_mask == 0).sum().item<int64_t>(), 0);
  auto part = batch_rows(batch, 1, 3);
  EXPECT_TRUE(torch::equal(part.token_type_ids, batch.token_type_ids.narrow(0, 1, 2)));
}

TEST(EncoderInputs, DecodersKeepTheirInputsAndEncodersRefuseOtherTasks) {
  auto task = make_task_from_yaml("{name: sst2}");
  const std::string options = task->format_options();
  fit_task_to_backbone(*task, *backbone_config_from_json(json{{"model_type", "llama"}}, "llama.json"), "test");
  EXPECT_EQ(task->format_options(), options);
  auto lm = make_task_from_yaml("{name: lm}");
  EXPECT_THROW(fit_task_to_backbone(*lm, *tiny("roberta"), "test"), InputError);
}

TEST(EncoderInputs, TokenCacheKeepsTokenTypes) {
  testing::TempDir dir;
  TokenizedExample e;
  e.input_ids = {101, 5, 102, 6, 102};
  e.token_type_ids = {0, 0, 0, 1, 1};
  e.class_label = 1;
  write_tokenized(dir / "x.tok", "digest", {e});
  auto back = read_tokenized(dir / "x.tok", "digest");
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ(back->front().token_type_ids, e.token_type_ids);
  EXPECT_EQ(back->front().input_ids, e.input_ids);
}

}  // namespace
}  // namespace peftlab

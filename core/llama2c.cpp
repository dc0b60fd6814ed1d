#include "core/llama2c.h"

#include <cstdint>
#include <fstream>
#include <limits>

#include "core/errors.h"
#include "core/families/llama.h"
#include "core/model_io.h"

namespace peftlab {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kHeaderBytes = 7 * sizeof(int32_t);
constexpr int64_t kMaxFloats = int64_t{1} << 60;     // so that the file size in bytes fits int64

struct Layout {
  LlamaConfig config;  // the llama family's, with llama2.c's conventions
  int64_t float_count = 0;  // floats after the header, including the unused rotary tables
};

Layout layout_from_header(const int32_t header[7], const std::string& source) {
  for (int i = 0; i < 7; ++i) {
    int64_t v = header[i];
    if (v == 0 || v > kMaxDimension || v < -kMaxDimension)
      throw InputError(source, fmt::format("not a llama2.c checkpoint: header field {} is {}", i, v));
  }
  Layout layout;
  LlamaConfig& c = layout.config;
  c.hidden_size = header[0];
  c.intermediate_size = header[1];
  c.num_hidden_layers = header[2];
  c.num_attention_heads = header[3];
  c.num_key_value_heads = header[4];
  c.vocab_size = std::abs(header[5]);
  c.tie_word_embeddings = header[5] > 0;
  c.max_position_embeddings = header[6];
  c.rope_interleaved = true;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.bos_token_id = 1;
  c.eos_token_id = 2;

  // Products of three header fields reach 2^74: count in 128 bits, and refuse a shape no file can hold before
  // narrowing (int64 overflowed here: found by fuzz_llama2c).
  using Wide = __int128;
  const Wide dim = c.hidden_size,
             per_layer = 2 * dim + 2 * dim * dim + 2 * Wide{c.kv_dim()} * dim + 3 * dim * c.intermediate_size;
  const Wide floats = Wide{c.vocab_size} * dim + Wide{c.num_hidden_layers} * per_layer + dim +
                      Wide{c.max_position_embeddings} * c.attention_head_dim() +
                      (c.tie_word_embeddings ? 0 : Wide{c.vocab_size} * dim);
  if (floats > kMaxFloats)
    throw InputError(source, fmt::format("not a llama2.c checkpoint: the header's shape (dim {}, hidden_dim {}, n_layers {}, "
                                         "vocab_size {}) needs more than 2^60 weights",
                                         c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size));
  layout.float_count = static_cast<int64_t>(floats);
  c.validate(source);
  return layout;
}

Layout read_layout(const fs::path& file) {
  const std::string source = file.string();
  if (!fs::exists(file)) throw InputError(source, "no such file");
  if (!fs::is_regular_file(file)) throw InputError(source, "not a regular file");
  const auto size = static_cast<int64_t>(fs::file_size(file));
  if (size < kHeaderBytes) throw InputError(source, fmt::format("truncated: {} bytes, shorter than the 28-byte llama2.c header", size));
  std::ifstream in(file, std::ios::binary);
  int32_t header[7];
  in.read(reinterpret_cast<char*>(header), kHeaderBytes);
  if (!in) throw InputError(source, "cannot read the header");
  Layout layout = layout_from_header(header, source);
  const int64_t expected = kHeaderBytes + layout.float_count * 4;
  if (size < expected)
    throw InputError(source, fmt::format("truncated: the header's shape needs {} bytes, the file has {}", expected, size));
  if (size > expected)
    throw InputError(source, fmt::format("{} bytes more than the header's shape needs ({}); not a legacy llama2.c checkpoint",
                                         size - expected, expected));
  return layout;
}

}  // namespace

BackboneConfigPtr read_llama2c_config(const fs::path& file) { return std::make_shared<LlamaConfig>(read_layout(file).config); }

Backbone load_llama2c(const fs::path& file) {
  const std::string source = file.string();
  Layout layout = read_layout(file);
  const LlamaConfig& c = layout.config;
  auto all = torch::empty({layout.float_count}, torch::kFloat32);
  std::ifstream in(file, std::ios::binary);
  in.seekg(kHeaderBytes);
  in.read(reinterpret_cast<char*>(all.data_ptr<float>()), layout.float_count * 4);
  if (!in) throw InputError(source, "cannot read the weights");

  int64_t offset = 0;
  auto take = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    auto t = all.narrow(0, offset, n).view(shape);
    offset += n;
    return t;
  };
  const int64_t L = c.num_hidden_layers, D = c.hidden_size, H = c.intermediate_size, KV = c.kv_dim();
  std::map<std::string, torch::Tensor> weights;
  weights["embed_tokens.weight"] = take({c.vocab_size, D});
  auto rms_att = take({L, D});
  auto wq = take({L, D, D}), wk = take({L, KV, D}), wv = take({L, KV, D}), wo = take({L, D, D});
  auto rms_ffn = take({L, D});
  auto w1 = take({L, H, D}), w2 = take({L, D, H}), w3 = take({L, H, D});
  weights["norm.weight"] = take({D});
  take({c.max_position_embeddings, c.attention_head_dim()});  // precomputed rotary tables, recomputed by the model
  if (!c.tie_word_embeddings) weights["lm_head.weight"] = take({c.vocab_size, D});
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    weights[p + "input_layernorm.weight"] = rms_att[l];
    weights[p + "self_attn.q_proj.weight"] = wq[l];
    weights[p + "self_attn.k_proj.weight"] = wk[l];
    weights[p + "self_attn.v_proj.weight"] = wv[l];
    weights[p + "self_attn.o_proj.weight"] = wo[l];
    weights[p + "post_attention_layernorm.weight"] = rms_ffn[l];
    weights[p + "mlp.gate_proj.weight"] = w1[l];
    weights[p + "mlp.down_proj.weight"] = w2[l];
    weights[p + "mlp.up_proj.weight"] = w3[l];
  }
  Backbone model = c.build();
  assign_weights(*model, weights, source);
  return model;
}

}  // namespace peftlab

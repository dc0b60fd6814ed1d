#!/usr/bin/env python3
"""Reference forward pass of the Hugging Face decoder families llama, mistral and qwen2, for parity tests.

Written from the model definitions in Hugging Face transformers (the Llama, Mistral and Qwen2 modeling and
configuration files, and the rotary-scaling rules), without transformers itself: it needs only PyTorch and
NumPy. For one named case it writes

  OUT/model/config.json         the configuration, with transformers' field names
  OUT/model/model.safetensors   random weights with transformers' tensor names, in the requested dtype
  OUT/expected.safetensors      logits (B, T, vocab) float64, input_ids and attention_mask (B, T) int64
  OUT/inputs.json               the same inputs as JSON, the case and what it exercises

The batch is right-padded: row b holds `lengths[b]` real tokens, then padding (attention_mask 0). Positions
count from 0 in every row. Logits at padded positions are NaN: they are not defined by the model (with a
sliding window a padded query can have no visible key at all), so a test compares real positions only.

The expected logits are computed in float64 from the weights exactly as stored (a bfloat16 file's values
widened), including the rotary frequencies and angles. transformers itself computes the rotary tables in
float32 even for a float64 model; that difference (about 1e-7 relative) is deliberately not reproduced: the
oracle is the model's arithmetic, not one library's rounding.

  python3 tests/reference/hf_decoder_reference.py --case qwen2 --dtype float64 --out DIR
  python3 tests/reference/hf_decoder_reference.py --all --out DIR     (DIR/<case>/<dtype>/ for all of them)
  python3 tests/reference/hf_decoder_reference.py --list
  python3 tests/reference/hf_decoder_reference.py --self-test

--self-test checks the reference against a second, loop-by-loop implementation, checks that every feature a
case claims to exercise changes its logits, and round-trips the safetensors writer. Exit status 0 = pass.
"""

import argparse
import copy
import json
import math
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------------------
# The cases. Shapes are tiny; every case uses grouped-query attention, and the test sequence (12 positions)
# is longer than mistral's sliding window.

SEQ_LEN = 12
ROW_LENGTHS = [12, 9, 5]  # right padding: row b has ROW_LENGTHS[b] real tokens

CASES = OrderedDict()

# Plain LLaMA (the layout of Llama-2 / TinyLlama): GQA, default rotary, separate output head.
CASES["llama-plain"] = {
    "about": "llama: grouped-query attention (4 heads, 2 kv heads), default rotary, untied lm_head",
    "exercises": ["gqa", "untied_lm_head"],
    "config": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": 96,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
    },
}

# Llama 3.1 style: llama3 rotary scaling (all three frequency bands occur at head_dim 12: unchanged, smoothed,
# divided), rope_theta 500000, an explicit head_dim that differs from hidden_size / num_attention_heads.
CASES["llama"] = {
    "about": "llama: rope_scaling llama3 (all three bands), rope_theta 500000, head_dim 12 != 32/4, GQA 4/2, untied",
    "exercises": ["gqa", "head_dim", "rope_llama3", "untied_lm_head"],
    "config": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 56,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 12,
        "hidden_act": "silu",
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "rope_scaling": {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": 96,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
    },
}

# Linear rotary scaling (the older "type" key, as in configs written before rope_type existed), biases on
# every attention and MLP projection, tied embeddings, multi-query attention (one kv head).
CASES["llama-linear"] = {
    "about": "llama: rope_scaling linear (factor 4, legacy 'type' key), attention_bias and mlp_bias, tied embeddings, MQA 4/1",
    "exercises": ["gqa", "rope_linear", "attention_bias", "mlp_bias", "tied_embeddings"],
    "config": {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 40,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "hidden_act": "silu",
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "rope_scaling": {"type": "linear", "factor": 4.0},
        "attention_bias": True,
        "attention_dropout": 0.0,
        "mlp_bias": True,
        "tie_word_embeddings": True,
        "vocab_size": 96,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
    },
}

# Mistral: a sliding window of 5 positions (the query and the 4 before it) over a 12-position sequence, and
# an explicit head_dim (as Mistral-Nemo has).
CASES["mistral"] = {
    "about": "mistral: sliding_window 5 < sequence 12, head_dim 16 != 32/4, GQA 4/2, rope_theta 1e6, untied",
    "exercises": ["gqa", "head_dim", "sliding_window", "untied_lm_head"],
    "config": {
        "architectures": ["MistralForCausalLM"],
        "model_type": "mistral",
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "hidden_act": "silu",
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "sliding_window": 5,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "vocab_size": 96,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "use_cache": True,
    },
}

# Qwen2: biases on q, k and v (not o), tied embeddings. Its config carries a sliding_window smaller than the
# sequence but use_sliding_window false, as released Qwen2/2.5 configs do: the window must not be applied.
CASES["qwen2"] = {
    "about": "qwen2: q/k/v biases, tied embeddings, GQA 4/2, rope_theta 1e6, sliding_window 4 present but use_sliding_window false",
    "exercises": ["gqa", "qkv_bias", "tied_embeddings", "unused_sliding_window"],
    "config": {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 64,
        "max_window_layers": 1,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "sliding_window": 4,
        "use_sliding_window": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": True,
        "vocab_size": 96,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "initializer_range": 0.02,
        "use_cache": True,
        "use_mrope": False,
    },
}

# --family NAME picks the family's main case.
FAMILY_CASE = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2"}

FILE_DTYPES = OrderedDict([
    ("float32", (torch.float32, "F32")),
    ("float64", (torch.float64, "F64")),
    ("bfloat16", (torch.bfloat16, "BF16")),
    ("float16", (torch.float16, "F16")),
])

# ---------------------------------------------------------------------------------------------------------
# Configuration, read the way transformers reads it.


def head_dim(config):
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def projection_biases(config):
    """(q/k/v bias, o bias, mlp bias) for the family."""
    family = config["model_type"]
    if family == "llama":
        return bool(config.get("attention_bias", False)), bool(config.get("attention_bias", False)), \
            bool(config.get("mlp_bias", False))
    if family == "mistral":
        return False, False, False
    if family == "qwen2":
        return True, False, False
    raise ValueError(f"unknown model_type {family!r}")


def sliding_window(config):
    """The attention window in positions (query included), or None for full causal attention."""
    family = config["model_type"]
    if family == "mistral":
        return config.get("sliding_window")
    if family == "qwen2":
        # Qwen2 windows only layers from max_window_layers on, and only when use_sliding_window is set; the
        # cases here keep it off (released configs do), so one window for all layers is not needed.
        if config.get("use_sliding_window", False):
            raise ValueError("qwen2 with use_sliding_window true is not modelled here")
        return None
    return None


def rope_type(config):
    scaling = config.get("rope_scaling")
    if not scaling:
        return "default"
    return scaling.get("rope_type", scaling.get("type", "default"))


def inverse_frequencies(config):
    """Rotary inverse frequencies, float64, length head_dim / 2 (rotary over the whole head)."""
    dim = head_dim(config)
    base = float(config.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    kind = rope_type(config)
    scaling = config.get("rope_scaling") or {}
    if kind == "default":
        return inv_freq
    if kind == "linear":
        # Scaling positions by 1/factor is the same as scaling the frequencies.
        return inv_freq / float(scaling["factor"])
    if kind == "llama3":
        factor = float(scaling["factor"])
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_context = float(scaling["original_max_position_embeddings"])
        wavelength = 2 * math.pi / inv_freq
        long_wave = wavelength > old_context / low        # low frequencies: divided by factor
        short_wave = wavelength < old_context / high      # high frequencies: unchanged
        divided = torch.where(long_wave, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelength - low) / (high - low)
        blended = (1 - smooth) * divided / factor + smooth * divided
        medium = ~long_wave & ~short_wave
        return torch.where(medium, blended, divided)
    raise ValueError(f"rope_scaling type {kind!r} is not modelled here")


# ---------------------------------------------------------------------------------------------------------
# Weights.


def weight_shapes(config):
    """OrderedDict of transformers' tensor names and shapes, in the order save_pretrained writes them."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads, kv_heads, dim = config["num_attention_heads"], config["num_key_value_heads"], head_dim(config)
    qkv_bias, o_bias, mlp_bias = projection_biases(config)
    shapes = OrderedDict()
    shapes["model.embed_tokens.weight"] = (config["vocab_size"], hidden)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for name, out_features, in_features, bias in [
            ("self_attn.q_proj", heads * dim, hidden, qkv_bias),
            ("self_attn.k_proj", kv_heads * dim, hidden, qkv_bias),
            ("self_attn.v_proj", kv_heads * dim, hidden, qkv_bias),
            ("self_attn.o_proj", hidden, heads * dim, o_bias),
            ("mlp.gate_proj", inter, hidden, mlp_bias),
            ("mlp.up_proj", inter, hidden, mlp_bias),
            ("mlp.down_proj", hidden, inter, mlp_bias),
        ]:
            shapes[p + name + ".weight"] = (out_features, in_features)
            if bias:
                shapes[p + name + ".bias"] = (out_features,)
        shapes[p + "input_layernorm.weight"] = (hidden,)
        shapes[p + "post_attention_layernorm.weight"] = (hidden,)
    shapes["model.norm.weight"] = (hidden,)
    if not config.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (config["vocab_size"], hidden)
    return shapes


def random_weights(config, seed):
    """Float64 weights scaled so that activations and logits are of order one (not transformers' 0.02 init,
    which would make logits tiny and a tolerance meaningless)."""
    generator = torch.Generator().manual_seed(seed)
    weights = OrderedDict()
    for name, shape in weight_shapes(config).items():
        noise = torch.randn(shape, generator=generator, dtype=torch.float64)
        if name.endswith("norm.weight"):
            weights[name] = 1.0 + 0.2 * noise
        elif name.endswith(".bias"):
            weights[name] = 0.2 * noise
        elif name == "model.embed_tokens.weight":
            # Small enough that tied logits (hidden . embedding) stay of order one too.
            weights[name] = 0.4 * noise
        else:
            weights[name] = noise / math.sqrt(shape[1])
    return weights


def as_stored(weights, file_dtype):
    """The weights rounded to the file's dtype, then widened back to float64 for the computation."""
    torch_dtype = FILE_DTYPES[file_dtype][0]
    return OrderedDict((n, w.to(torch_dtype).to(torch.float64)) for n, w in weights.items())


def output_weight(config, weights):
    if config.get("tie_word_embeddings", False):
        return weights["model.embed_tokens.weight"]
    return weights["lm_head.weight"]


# ---------------------------------------------------------------------------------------------------------
# The forward pass (vectorised, float64).


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def linear(x, weights, name):
    y = x @ weights[name + ".weight"].T
    if name + ".bias" in weights:
        y = y + weights[name + ".bias"]
    return y


def visible_keys(config, attention_mask):
    """(B, T, T) bool: query i may attend key j (causal, key not padding, inside the sliding window)."""
    batch, length = attention_mask.shape
    i = torch.arange(length).view(-1, 1)
    j = torch.arange(length).view(1, -1)
    allowed = j <= i
    window = sliding_window(config)
    if window is not None:
        allowed = allowed & (j > i - window)
    return allowed.unsqueeze(0) & attention_mask.bool().unsqueeze(1)


def forward(config, weights, input_ids, attention_mask):
    """Logits (B, T, vocab), float64; NaN at padded positions."""
    batch, length = input_ids.shape
    heads, kv_heads, dim = config["num_attention_heads"], config["num_key_value_heads"], head_dim(config)
    eps = float(config["rms_norm_eps"])
    if config.get("hidden_act", "silu") != "silu":
        raise ValueError("only hidden_act silu is modelled here")

    angles = torch.arange(length, dtype=torch.float64).view(-1, 1) * inverse_frequencies(config).view(1, -1)
    angles = torch.cat([angles, angles], dim=-1)  # (T, dim): each frequency serves the pair (i, i + dim/2)
    cos, sin = angles.cos(), angles.sin()
    allowed = visible_keys(config, attention_mask).unsqueeze(1)  # (B, 1, T, T)

    x = weights["model.embed_tokens.weight"][input_ids]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, weights[p + "input_layernorm.weight"], eps)
        q = linear(h, weights, p + "self_attn.q_proj").view(batch, length, heads, dim).transpose(1, 2)
        k = linear(h, weights, p + "self_attn.k_proj").view(batch, length, kv_heads, dim).transpose(1, 2)
        v = linear(h, weights, p + "self_attn.v_proj").view(batch, length, kv_heads, dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # Query head h reads kv head h // (heads / kv_heads): each kv head serves a block of query heads.
        group = heads // kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dim)
        scores = scores.masked_fill(~allowed, float("-inf"))
        # A padded query can see no key at all; give it zero attention instead of NaN so that nothing NaN
        # flows (0 * NaN) into real positions through later layers.
        top = scores.amax(-1, keepdim=True).clamp_min(-1e300)
        exp = torch.where(allowed, (scores - top).exp(), torch.zeros_like(scores))
        total = exp.sum(-1, keepdim=True)
        probs = exp / torch.where(total > 0, total, torch.ones_like(total))
        attn = (probs @ v).transpose(1, 2).reshape(batch, length, heads * dim)
        x = x + linear(attn, weights, p + "self_attn.o_proj")
        h = rms_norm(x, weights[p + "post_attention_layernorm.weight"], eps)
        gate = linear(h, weights, p + "mlp.gate_proj")
        up = linear(h, weights, p + "mlp.up_proj")
        x = x + linear(torch.nn.functional.silu(gate) * up, weights, p + "mlp.down_proj")
    x = rms_norm(x, weights["model.norm.weight"], eps)
    logits = x @ output_weight(config, weights).T
    return logits.masked_fill(~attention_mask.bool().unsqueeze(-1), float("nan"))


# ---------------------------------------------------------------------------------------------------------
# A second implementation for --self-test: NumPy, one sequence, one position and one head at a time, rotary as
# explicit pair rotations, llama3 frequencies band by band, the window as an index range.


def loop_inverse_frequencies(config):
    dim = head_dim(config)
    base = float(config.get("rope_theta", 10000.0))
    scaling = config.get("rope_scaling") or {}
    kind = rope_type(config)
    out = []
    for i in range(dim // 2):
        f = base ** (-2.0 * i / dim)
        if kind == "linear":
            f = f / scaling["factor"]
        elif kind == "llama3":
            old = scaling["original_max_position_embeddings"]
            wavelength = 2 * math.pi / f
            if wavelength < old / scaling["high_freq_factor"]:
                pass
            elif wavelength > old / scaling["low_freq_factor"]:
                f = f / scaling["factor"]
            else:
                s = (old / wavelength - scaling["low_freq_factor"]) / (
                    scaling["high_freq_factor"] - scaling["low_freq_factor"])
                f = (1 - s) * f / scaling["factor"] + s * f
        out.append(f)
    return out


def loop_forward_row(config, weights, tokens):
    """Logits (len(tokens), vocab) for one unpadded sequence."""
    w = {n: t.numpy() for n, t in weights.items()}
    heads, kv_heads, dim = config["num_attention_heads"], config["num_key_value_heads"], head_dim(config)
    eps = float(config["rms_norm_eps"])
    window = sliding_window(config)
    freqs = loop_inverse_frequencies(config)
    n = len(tokens)

    def norm(vec, weight):
        return vec / math.sqrt(float(np.mean(vec * vec)) + eps) * weight

    def lin(vec, name):
        out = w[name + ".weight"] @ vec
        return out + w[name + ".bias"] if name + ".bias" in w else out

    def rotate(vec, pos):
        out = vec.copy()
        for i, f in enumerate(freqs):
            c, s = math.cos(pos * f), math.sin(pos * f)
            a, b = vec[i], vec[i + dim // 2]
            out[i], out[i + dim // 2] = a * c - b * s, b * c + a * s
        return out

    xs = [w["model.embed_tokens.weight"][t].copy() for t in tokens]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        hs = [norm(x, w[p + "input_layernorm.weight"]) for x in xs]
        qs = [lin(h, p + "self_attn.q_proj").reshape(heads, dim) for h in hs]
        ks = [lin(h, p + "self_attn.k_proj").reshape(kv_heads, dim) for h in hs]
        vs = [lin(h, p + "self_attn.v_proj").reshape(kv_heads, dim) for h in hs]
        qs = [np.stack([rotate(q[hd], pos) for hd in range(heads)]) for pos, q in enumerate(qs)]
        ks = [np.stack([rotate(k[hd], pos) for hd in range(kv_heads)]) for pos, k in enumerate(ks)]
        new_xs = []
        for pos in range(n):
            first = 0 if window is None else max(0, pos - window + 1)
            heads_out = []
            for hd in range(heads):
                kv = hd // (heads // kv_heads)
                scores = [float(qs[pos][hd] @ ks[j][kv]) / math.sqrt(dim) for j in range(first, pos + 1)]
                top = max(scores)
                e = [math.exp(s - top) for s in scores]
                total = sum(e)
                heads_out.append(sum(e[j - first] / total * vs[j][kv] for j in range(first, pos + 1)))
            x = xs[pos] + lin(np.concatenate(heads_out), p + "self_attn.o_proj")
            h = norm(x, w[p + "post_attention_layernorm.weight"])
            g = lin(h, p + "mlp.gate_proj")
            x = x + lin(g / (1.0 + np.exp(-g)) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
            new_xs.append(x)
        xs = new_xs
    head = output_weight(config, weights).numpy()
    return np.stack([head @ norm(x, w["model.norm.weight"]) for x in xs])


# ---------------------------------------------------------------------------------------------------------
# Safetensors, written and read by hand: an 8-byte little-endian header length, a JSON header
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} padded with spaces to a
# multiple of 8 bytes, then the tensors' bytes back to back (offsets relative to the end of the header).

STORAGE_TYPES = {"F64": torch.int64, "F32": torch.int32, "BF16": torch.int16, "F16": torch.int16,
                 "I64": torch.int64}
TORCH_TYPES = {"F64": torch.float64, "F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
               "I64": torch.int64}
DTYPE_NAMES = {v: k for k, v in TORCH_TYPES.items()}


def tensor_bytes(tensor):
    # Reinterpreted as integers of the same width, since NumPy has no bfloat16; the host's byte order is
    # little-endian (checked in main), as safetensors requires.
    return tensor.contiguous().view(STORAGE_TYPES[DTYPE_NAMES[tensor.dtype]]).numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        data = tensor_bytes(tensor)
        header[name] = {"dtype": DTYPE_NAMES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".partial", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(path + ".partial", path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    out = OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        storage = torch.frombuffer(bytearray(data[begin:end]), dtype=STORAGE_TYPES[info["dtype"]])
        out[name] = storage.view(TORCH_TYPES[info["dtype"]]).reshape(info["shape"])
    return header, out


# ---------------------------------------------------------------------------------------------------------
# Inputs and output folder.


def test_inputs(config, seed):
    """Right-padded batch: (input_ids, attention_mask), both (B, T) int64; padding uses token 0."""
    generator = torch.Generator().manual_seed(seed + 1000)
    ids = torch.randint(0, config["vocab_size"], (len(ROW_LENGTHS), SEQ_LEN), generator=generator)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(ROW_LENGTHS):
        mask[row, :n] = 1
    return ids.masked_fill(mask == 0, 0), mask


def write_case(case_name, file_dtype, out, seed):
    case = CASES[case_name]
    config = copy.deepcopy(case["config"])
    config["torch_dtype"] = file_dtype
    weights = random_weights(config, seed)
    stored = as_stored(weights, file_dtype)
    input_ids, attention_mask = test_inputs(config, seed)
    logits = forward(config, stored, input_ids, attention_mask)

    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    torch_dtype = FILE_DTYPES[file_dtype][0]
    write_safetensors(os.path.join(model_dir, "model.safetensors"),
                      OrderedDict((n, w.to(torch_dtype)) for n, w in weights.items()), {"format": "pt"})
    write_safetensors(os.path.join(out, "expected.safetensors"),
                      OrderedDict([("logits", logits), ("input_ids", input_ids),
                                   ("attention_mask", attention_mask)]),
                      {"case": case_name, "dtype": file_dtype})
    with open(os.path.join(out, "inputs.json"), "w") as f:
        json.dump({
            "case": case_name,
            "family": config["model_type"],
            "dtype": file_dtype,
            "seed": seed,
            "about": case["about"],
            "exercises": case["exercises"],
            "input_ids": input_ids.tolist(),
            "attention_mask": attention_mask.tolist(),
            "lengths": ROW_LENGTHS,
            "logits": "expected.safetensors 'logits' (B, T, vocab) float64, computed in float64 from the stored "
                      "weights; NaN at padded positions",
        }, f, indent=1)
        f.write("\n")
    return logits


# ---------------------------------------------------------------------------------------------------------
# --self-test


def real_positions(logits, attention_mask):
    return logits[attention_mask.bool()]


def self_test():
    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    def diff(a, b):
        return float((a - b).abs().max())

    seed = 0
    for name, case in CASES.items():
        config = case["config"]
        weights = random_weights(config, seed)
        ids, mask = test_inputs(config, seed)
        logits = forward(config, weights, ids, mask)
        valid = real_positions(logits, mask)
        check(bool(torch.isfinite(valid).all()) and bool(torch.isnan(logits[~mask.bool()]).all()),
              f"{name}: real positions finite, padded positions NaN")
        check(float(valid.std()) > 0.3, f"{name}: logits are of order one (std {float(valid.std()):.3f})")

        # The second implementation, row by row without padding.
        worst = 0.0
        for row, n in enumerate(ROW_LENGTHS):
            expected = torch.from_numpy(loop_forward_row(config, weights, ids[row, :n].tolist()))
            worst = max(worst, diff(logits[row, :n], expected))
        check(worst < 1e-12, f"{name}: equals the loop implementation row by row ({worst:.2e})")

        # Padding changes nothing at real positions: each row alone gives the same logits.
        worst = 0.0
        for row, n in enumerate(ROW_LENGTHS):
            alone = forward(config, weights, ids[row:row + 1, :n], mask[row:row + 1, :n])
            worst = max(worst, diff(logits[row, :n], alone[0]))
        check(worst < 1e-12, f"{name}: padded batch equals rows run alone ({worst:.2e})")

        # Every feature the case claims changes the logits by far more than any tolerance.
        def changed(altered_config, altered_weights=None):
            other = forward(altered_config, altered_weights or weights, ids, mask)
            return diff(real_positions(other, mask), valid)

        exercised = case["exercises"]
        if "rope_llama3" in exercised or "rope_linear" in exercised:
            plain = dict(config, rope_scaling=None)
            check(changed(plain) > 1e-2, f"{name}: rope scaling matters ({changed(plain):.3f})")
        if "rope_llama3" in exercised:
            s = config["rope_scaling"]
            base = inverse_frequencies(dict(config, rope_scaling=None))
            wavelength = 2 * math.pi / base
            old = s["original_max_position_embeddings"]
            bands = {
                "unchanged": int((wavelength < old / s["high_freq_factor"]).sum()),
                "divided": int((wavelength > old / s["low_freq_factor"]).sum()),
            }
            bands["smoothed"] = len(base) - bands["unchanged"] - bands["divided"]
            check(all(v > 0 for v in bands.values()), f"{name}: llama3 bands all occur {bands}")
        if "head_dim" in exercised:
            check(head_dim(config) != config["hidden_size"] // config["num_attention_heads"],
                  f"{name}: head_dim differs from hidden_size / heads")
        if "sliding_window" in exercised:
            unwindowed = dict(config, sliding_window=None)
            check(config["sliding_window"] < SEQ_LEN and changed(unwindowed) > 1e-2,
                  f"{name}: the sliding window matters ({changed(unwindowed):.3f})")
        if "unused_sliding_window" in exercised:
            # The same model as a mistral with this window: applying it by mistake would be caught.
            # (forward() applies whatever biases the weights hold; only the attention rules change.)
            wrongly = dict(config, model_type="mistral")
            check(config["sliding_window"] < SEQ_LEN and changed(wrongly) > 1e-2,
                  f"{name}: applying the unused window would change logits ({changed(wrongly):.3f})")
        for feature, marker in [("attention_bias", "self_attn.o_proj.bias"), ("qkv_bias", "self_attn.q_proj.bias"),
                                ("mlp_bias", "mlp.up_proj.bias")]:
            if feature in exercised:
                groups = {"attention_bias": ("self_attn.",), "qkv_bias": ("q_proj", "k_proj", "v_proj"),
                          "mlp_bias": ("mlp.",)}[feature]
                zeroed = OrderedDict((n, torch.zeros_like(t) if n.endswith(".bias") and any(g in n for g in groups)
                                      else t) for n, t in weights.items())
                check(any(marker in n for n in weights) and changed(config, zeroed) > 1e-2,
                      f"{name}: {feature} matters ({changed(config, zeroed):.3f})")
        if "gqa" in exercised:
            check(config["num_key_value_heads"] < config["num_attention_heads"], f"{name}: grouped-query attention")
        if "tied_embeddings" in exercised:
            check("lm_head.weight" not in weights, f"{name}: no lm_head.weight when tied")

    # The safetensors writer: the header layout, and a round trip of every dtype.
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.safetensors")
        tensors = OrderedDict([("a", torch.randn(3, 5, dtype=torch.float64)), ("b", torch.randn(7).float()),
                               ("c", torch.randn(2, 3).to(torch.bfloat16)), ("d", torch.randn(4).half()),
                               ("e", torch.arange(6).view(2, 3))])
        write_safetensors(path, tensors, {"format": "pt"})
        header, back = read_safetensors(path)
        with open(path, "rb") as f:
            raw = f.read()
        (length,) = struct.unpack("<Q", raw[:8])
        check(length % 8 == 0 and len(raw) == 8 + length + sum(t.numel() * t.element_size() for t in tensors.values()),
              "safetensors: header padded to 8 bytes, data contiguous")
        check(header["c"]["dtype"] == "BF16" and header["d"]["data_offsets"] == [15 * 8 + 7 * 4 + 6 * 2, 15 * 8 + 7 * 4 + 6 * 2 + 4 * 2],
              "safetensors: dtype names and offsets")
        check(all(torch.equal(tensors[n], back[n]) for n in tensors), "safetensors: every dtype round-trips")
        # A known bfloat16 pattern: 1.0 is 0x3F80, stored little-endian.
        write_safetensors(path, OrderedDict([("one", torch.ones(1, dtype=torch.bfloat16))]))
        with open(path, "rb") as f:
            raw = f.read()
        check(raw[-2:] == b"\x80\x3f", "safetensors: bfloat16 1.0 is stored as 80 3f")

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", "--family", dest="case",
                        help="a case name (--list), or a family name for its main case")
    parser.add_argument("--dtype", choices=list(FILE_DTYPES), default="float32", help="dtype of the weight file")
    parser.add_argument("--out", help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true",
                        help="write every case in every dtype, into OUT/<case>/<dtype>/ (one Python start-up)")
    parser.add_argument("--list", action="store_true", help="list the cases")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if sys.byteorder != "little":
        sys.exit("error: safetensors files are little-endian; this host is not")
    if args.list:
        for name, case in CASES.items():
            print(f"{name:14s} {case['about']}")
        return 0
    if args.self_test:
        return self_test()
    if args.all and args.out:
        for name in CASES:
            for file_dtype in FILE_DTYPES:
                write_case(name, file_dtype, os.path.join(args.out, name, file_dtype), args.seed)
        return 0
    if not args.case or not args.out:
        parser.error("--case and --out (or --all and --out) are required")
    name = FAMILY_CASE.get(args.case, args.case)
    if name not in CASES:
        parser.error(f"unknown case {args.case!r}; --list shows them")
    write_case(name, args.dtype, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

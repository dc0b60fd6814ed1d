#!/usr/bin/env python3
"""Reference forward pass of the Hugging Face encoder families bert, roberta and deberta-v2 with their
sequence classification heads, for parity tests.

Written from the model definitions in Hugging Face transformers (BertEmbeddings, BertSelfAttention,
BertSelfOutput, BertIntermediate, BertOutput, BertPooler and BertForSequenceClassification; RobertaEmbeddings
with create_position_ids_from_input_ids, and RobertaClassificationHead; DebertaV2Embeddings, the disentangled
attention of DisentangledSelfAttention with build_relative_position and make_log_bucket_position, the relative
embeddings' LayerNorm of DebertaV2Encoder, ContextPooler and DebertaV2ForSequenceClassification), without
transformers itself: it needs only PyTorch and NumPy. For one case it writes

  OUT/model/config.json         the configuration, with transformers' field names
  OUT/model/model.safetensors   random weights of the *ForSequenceClassification model, with transformers'
                                tensor names ("bert.embeddings...", "bert.pooler.dense...", "classifier..."),
                                in the requested dtype
  OUT/expected.safetensors      logits (B, num_labels) and hidden (B, T, hidden) float64; input_ids,
                                token_type_ids and attention_mask (B, T) int64

The batch is right-padded with the config's pad_token_id (attention_mask 0 there). Everything is computed in
float64 from the weights exactly as stored. Dropout is off (evaluation mode).

  python3 tests/reference/hf_encoder_reference.py --all --out DIR     (DIR/<case>/<dtype>/)
  python3 tests/reference/hf_encoder_reference.py --self-test

--self-test checks that padding changes nothing (each row alone, unpadded, gives the same logits as in the
padded batch), that RoBERTa's positions start after padding_idx, that token types matter for BERT, and
round-trips the safetensors writer. Exit status 0 = pass.
"""

import argparse
import copy
import json
import math
import os
import struct
import sys
from collections import OrderedDict

import torch

SEQ_LEN = 12
ROW_LENGTHS = [12, 9, 5]
FIRST_TEXT = [5, 4, 2]  # BERT: tokens after these are the second text (token type 1)

CASES = OrderedDict()

CASES["bert"] = {
    "about": "bert: 2 layers, 4 heads, pair inputs with token types 0/1, pooler + classifier, 3 labels",
    "num_labels": 3,
    "config": {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    },
}

CASES["roberta"] = {
    "about": "roberta: 2 layers, 4 heads, positions from padding_idx+1 (pad 1), one token type, "
             "classification head dense+tanh+out_proj, 1 label (regression)",
    "num_labels": 1,
    "config": {
        "architectures": ["RobertaForSequenceClassification"],
        "model_type": "roberta",
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 40,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 16,
        "type_vocab_size": 1,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-05,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "position_embedding_type": "absolute",
        "classifier_dropout": None,
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
    },
}

# DeBERTa-v3's layout (deberta-v3-base's config shrunk): no absolute positions, no token types, relative
# position buckets (8 buckets for a 12-token sequence, so the logarithmic buckets occur), keys shared with the
# content projections, c2p and p2c, LayerNorm on the relative embeddings.
CASES["deberta-v3"] = {
    "about": "deberta-v2 (v3 layout): position_buckets 8, max_relative_positions 16, share_att_key, p2c|c2p, "
             "norm_rel_ebd layer_norm, no absolute positions, type_vocab_size 0, ContextPooler, 2 labels",
    "num_labels": 2,
    "config": {
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 64,
        "type_vocab_size": 0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-7,
        "relative_attention": True,
        "max_relative_positions": 16,
        "position_buckets": 8,
        "norm_rel_ebd": "layer_norm",
        "share_att_key": True,
        "pos_att_type": "p2c|c2p",
        "position_biased_input": False,
        "pad_token_id": 0,
        "pooler_dropout": 0,
        "pooler_hidden_act": "gelu",
    },
}

# DeBERTa-v2's other branches: separate position projections (pos_key_proj), c2p only, relative distances
# clamped at max_relative_positions 5 (no buckets), absolute positions added to the input, two token types.
CASES["deberta-v2"] = {
    "about": "deberta-v2: max_relative_positions 5 < sequence, no buckets, pos_key_proj (share_att_key false), "
             "c2p only, position_biased_input, 2 token types, 1 label (regression)",
    "num_labels": 1,
    "config": {
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "vocab_size": 96,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 40,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 32,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-7,
        "relative_attention": True,
        "max_relative_positions": 5,
        "share_att_key": False,
        "pos_att_type": ["c2p"],
        "position_biased_input": True,
        "pad_token_id": 0,
        "pooler_dropout": 0,
        "pooler_hidden_act": "gelu",
    },
}

FILE_DTYPES = {"float32": torch.float32, "float64": torch.float64}

# ---------------------------------------------------------------------------------------------------------
# Weights, with transformers' names.


def prefix(config):
    return "deberta" if config["model_type"] == "deberta-v2" else config["model_type"]


def deberta(config):
    """DebertaV2Config's derived settings, as the modules read them."""
    pos = config.get("pos_att_type") or []
    if isinstance(pos, str):
        pos = [x.strip() for x in pos.lower().split("|")]
    max_relative = config.get("max_relative_positions", -1)
    if max_relative < 1:
        max_relative = config["max_position_embeddings"]
    buckets = config.get("position_buckets", -1)
    return {"c2p": "c2p" in pos, "p2c": "p2c" in pos, "max_relative": max_relative, "buckets": buckets,
            "span": buckets if buckets > 0 else max_relative, "share": config.get("share_att_key", False),
            "relative": config.get("relative_attention", False),
            "norm": "layer_norm" in [x.strip() for x in config.get("norm_rel_ebd", "none").lower().split("|")],
            "absolute": config.get("position_biased_input", True)}


def deberta_weight_shapes(config, num_labels):
    H, I, d = config["hidden_size"], config["intermediate_size"], deberta(config)
    shapes = OrderedDict()
    shapes["deberta.embeddings.word_embeddings.weight"] = (config["vocab_size"], H)
    if d["absolute"]:
        shapes["deberta.embeddings.position_embeddings.weight"] = (config["max_position_embeddings"], H)
    if config["type_vocab_size"] > 0:
        shapes["deberta.embeddings.token_type_embeddings.weight"] = (config["type_vocab_size"], H)
    shapes["deberta.embeddings.LayerNorm.weight"] = (H,)
    shapes["deberta.embeddings.LayerNorm.bias"] = (H,)
    for i in range(config["num_hidden_layers"]):
        layer = f"deberta.encoder.layer.{i}."
        names = ["attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj"]
        if d["relative"] and not d["share"]:
            names += ["attention.self.pos_key_proj"] if d["c2p"] else []
            names += ["attention.self.pos_query_proj"] if d["p2c"] else []
        for name in names + ["attention.output.dense"]:
            shapes[layer + name + ".weight"] = (H, H)
            shapes[layer + name + ".bias"] = (H,)
        shapes[layer + "attention.output.LayerNorm.weight"] = (H,)
        shapes[layer + "attention.output.LayerNorm.bias"] = (H,)
        shapes[layer + "intermediate.dense.weight"] = (I, H)
        shapes[layer + "intermediate.dense.bias"] = (I,)
        shapes[layer + "output.dense.weight"] = (H, I)
        shapes[layer + "output.dense.bias"] = (H,)
        shapes[layer + "output.LayerNorm.weight"] = (H,)
        shapes[layer + "output.LayerNorm.bias"] = (H,)
    if d["relative"]:
        shapes["deberta.encoder.rel_embeddings.weight"] = (2 * d["span"], H)
    if d["norm"]:
        shapes["deberta.encoder.LayerNorm.weight"] = (H,)
        shapes["deberta.encoder.LayerNorm.bias"] = (H,)
    shapes["pooler.dense.weight"] = (H, H)
    shapes["pooler.dense.bias"] = (H,)
    shapes["classifier.weight"] = (num_labels, H)
    shapes["classifier.bias"] = (num_labels,)
    return shapes


def weight_shapes(config, num_labels):
    if config["model_type"] == "deberta-v2":
        return deberta_weight_shapes(config, num_labels)
    p, H, I = prefix(config), config["hidden_size"], config["intermediate_size"]
    shapes = OrderedDict()
    shapes[f"{p}.embeddings.word_embeddings.weight"] = (config["vocab_size"], H)
    shapes[f"{p}.embeddings.position_embeddings.weight"] = (config["max_position_embeddings"], H)
    shapes[f"{p}.embeddings.token_type_embeddings.weight"] = (config["type_vocab_size"], H)
    shapes[f"{p}.embeddings.LayerNorm.weight"] = (H,)
    shapes[f"{p}.embeddings.LayerNorm.bias"] = (H,)
    for i in range(config["num_hidden_layers"]):
        layer = f"{p}.encoder.layer.{i}."
        for name, (out_features, in_features) in [("attention.self.query", (H, H)), ("attention.self.key", (H, H)),
                                                  ("attention.self.value", (H, H)), ("attention.output.dense", (H, H)),
                                                  ("intermediate.dense", (I, H)), ("output.dense", (H, I))]:
            shapes[layer + name + ".weight"] = (out_features, in_features)
            shapes[layer + name + ".bias"] = (out_features,)
            if name.endswith("output.dense"):
                norm = layer + name[:-len("dense")] + "LayerNorm"
                shapes[norm + ".weight"] = (H,)
                shapes[norm + ".bias"] = (H,)
    if config["model_type"] == "bert":
        shapes["bert.pooler.dense.weight"] = (H, H)
        shapes["bert.pooler.dense.bias"] = (H,)
        shapes["classifier.weight"] = (num_labels, H)
        shapes["classifier.bias"] = (num_labels,)
    else:
        shapes["classifier.dense.weight"] = (H, H)
        shapes["classifier.dense.bias"] = (H,)
        shapes["classifier.out_proj.weight"] = (num_labels, H)
        shapes["classifier.out_proj.bias"] = (num_labels,)
    return shapes


def random_weights(config, num_labels, seed):
    """Float64 weights scaled so that activations and logits are of order one."""
    generator = torch.Generator().manual_seed(seed)
    weights = OrderedDict()
    for name, shape in weight_shapes(config, num_labels).items():
        noise = torch.randn(shape, generator=generator, dtype=torch.float64)
        if name.endswith("LayerNorm.weight"):
            weights[name] = 1.0 + 0.2 * noise
        elif name.endswith(".bias"):
            weights[name] = 0.2 * noise
        elif "embeddings" in name:
            weights[name] = 0.5 * noise
        else:
            weights[name] = noise / math.sqrt(shape[1])
    return weights


# ---------------------------------------------------------------------------------------------------------
# The forward pass (float64, evaluation mode), as transformers' modules compute it.


def linear(x, w, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def layer_norm(x, w, name, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance, as nn.LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]


def gelu(x, act):
    if act == "gelu":  # transformers' GELUActivation: x * Phi(x) with erf
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    # gelu_new / gelu_pytorch_tanh
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def position_ids(config, input_ids):
    if config["model_type"] == "roberta":
        # create_position_ids_from_input_ids: cumulative count of non-padding tokens, offset by padding_idx.
        padding_idx = config["pad_token_id"]
        mask = input_ids.ne(padding_idx).int()
        incremental = torch.cumsum(mask, dim=1).type_as(mask) * mask
        return incremental.long() + padding_idx
    return torch.arange(input_ids.shape[1]).unsqueeze(0).expand_as(input_ids)


def make_log_bucket_position(relative_pos, bucket_size, max_position):
    """Relative distances beyond bucket_size // 2 on a logarithmic scale (float32 arithmetic, as transformers)."""
    sign = torch.sign(relative_pos)
    mid = bucket_size // 2
    abs_pos = torch.where((relative_pos < mid) & (relative_pos > -mid), torch.tensor(mid - 1).type_as(relative_pos),
                          torch.abs(relative_pos))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid))
                         * (mid - 1)) + mid
    return torch.where(abs_pos <= mid, relative_pos.type_as(log_pos), log_pos * sign)


def build_relative_position(size, bucket_size, max_position):
    """(size, size) distances query - key, bucketed when bucket_size > 0."""
    ids = torch.arange(size)
    relative = ids[:, None] - ids[None, :]
    if bucket_size > 0 and max_position > 0:
        relative = make_log_bucket_position(relative, bucket_size, max_position)
    return relative.to(torch.long)


def deberta_encode(config, w, input_ids, token_type_ids, attention_mask):
    H, eps, heads, d = config["hidden_size"], config["layer_norm_eps"], config["num_attention_heads"], deberta(config)
    hd = H // heads
    B, T = input_ids.shape
    e = "deberta.embeddings."
    x = w[e + "word_embeddings.weight"][input_ids]
    if d["absolute"]:
        x = x + w[e + "position_embeddings.weight"][torch.arange(T)].unsqueeze(0)
    if config["type_vocab_size"] > 0:
        x = x + w[e + "token_type_embeddings.weight"][token_type_ids]
    x = layer_norm(x, w, e + "LayerNorm", eps) * attention_mask.unsqueeze(-1).to(torch.float64)
    rel_embeddings = w.get("deberta.encoder.rel_embeddings.weight")
    if d["norm"]:
        rel_embeddings = layer_norm(rel_embeddings, w, "deberta.encoder.LayerNorm", eps)
    relative_pos = build_relative_position(T, d["buckets"], d["max_relative"])
    # XSoftmax: query i and key j both real; masked entries get zero probability.
    pair_mask = (attention_mask[:, None, :, None] * attention_mask[:, None, None, :]).bool()
    scale_factor = 1 + int(d["c2p"]) + int(d["p2c"])
    scale = math.sqrt(hd * scale_factor)  # float64 here; transformers rounds this square root to float32
    span = d["span"]

    def heads_of(t):
        return t.view(t.shape[0], t.shape[1], heads, hd).permute(0, 2, 1, 3)

    for i in range(config["num_hidden_layers"]):
        layer = f"deberta.encoder.layer.{i}."
        a = layer + "attention.self."
        q = heads_of(linear(x, w, a + "query_proj"))
        k = heads_of(linear(x, w, a + "key_proj"))
        v = heads_of(linear(x, w, a + "value_proj"))
        scores = q @ k.transpose(-1, -2) / scale
        if d["relative"]:
            r = rel_embeddings[0:2 * span].unsqueeze(0)
            if d["c2p"]:
                pos_key = heads_of(linear(r, w, a + ("key_proj" if d["share"] else "pos_key_proj")))
                c2p = q @ pos_key.transpose(-1, -2)
                index = torch.clamp(relative_pos + span, 0, 2 * span - 1).expand(B, heads, T, T)
                scores = scores + torch.gather(c2p, -1, index) / scale
            if d["p2c"]:
                pos_query = heads_of(linear(r, w, a + ("query_proj" if d["share"] else "pos_query_proj")))
                p2c = k @ pos_query.transpose(-1, -2)
                index = torch.clamp(-relative_pos + span, 0, 2 * span - 1).expand(B, heads, T, T)
                scores = scores + torch.gather(p2c, -1, index).transpose(-1, -2) / scale
        scores = scores.masked_fill(~pair_mask, torch.finfo(torch.float64).min)
        probs = torch.softmax(scores, dim=-1).masked_fill(~pair_mask, 0)
        context = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        attended = layer_norm(linear(context, w, layer + "attention.output.dense") + x, w,
                              layer + "attention.output.LayerNorm", eps)
        inner = gelu(linear(attended, w, layer + "intermediate.dense"), config["hidden_act"])
        x = layer_norm(linear(inner, w, layer + "output.dense") + attended, w, layer + "output.LayerNorm", eps)
    return x


def encode(config, w, input_ids, token_type_ids, attention_mask):
    if config["model_type"] == "deberta-v2":
        return deberta_encode(config, w, input_ids, token_type_ids, attention_mask)
    p, H, eps = prefix(config), config["hidden_size"], config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    d = H // heads
    B, T = input_ids.shape
    e = f"{p}.embeddings."
    x = (w[e + "word_embeddings.weight"][input_ids] + w[e + "token_type_embeddings.weight"][token_type_ids]
         + w[e + "position_embeddings.weight"][position_ids(config, input_ids)])
    x = layer_norm(x, w, e + "LayerNorm", eps)
    # get_extended_attention_mask: (1 - mask) * finfo.min, added to every query's scores.
    extended = (1.0 - attention_mask[:, None, None, :].to(torch.float64)) * torch.finfo(torch.float64).min
    for i in range(config["num_hidden_layers"]):
        layer = f"{p}.encoder.layer.{i}."

        def heads_of(t):
            return t.view(B, T, heads, d).permute(0, 2, 1, 3)

        q = heads_of(linear(x, w, layer + "attention.self.query"))
        k = heads_of(linear(x, w, layer + "attention.self.key"))
        v = heads_of(linear(x, w, layer + "attention.self.value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + extended
        context = (torch.softmax(scores, dim=-1) @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        attended = layer_norm(linear(context, w, layer + "attention.output.dense") + x, w,
                              layer + "attention.output.LayerNorm", eps)
        inner = gelu(linear(attended, w, layer + "intermediate.dense"), config["hidden_act"])
        x = layer_norm(linear(inner, w, layer + "output.dense") + attended, w, layer + "output.LayerNorm", eps)
    return x


def classify(config, w, hidden):
    first = hidden[:, 0]
    if config["model_type"] == "deberta-v2":  # ContextPooler, then the classifier
        pooled = gelu(linear(first, w, "pooler.dense"), config.get("pooler_hidden_act", "gelu"))
        return linear(pooled, w, "classifier")
    if config["model_type"] == "bert":
        pooled = torch.tanh(linear(first, w, "bert.pooler.dense"))
        return linear(pooled, w, "classifier")
    return linear(torch.tanh(linear(first, w, "classifier.dense")), w, "classifier.out_proj")


# ---------------------------------------------------------------------------------------------------------
# safetensors (the same little writer as the decoder reference).

STORAGE_TYPES = {"F64": torch.int64, "F32": torch.int32, "I64": torch.int64}
TORCH_TYPES = {"F64": torch.float64, "F32": torch.float32, "I64": torch.int64}
DTYPE_NAMES = {v: k for k, v in TORCH_TYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = metadata
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        data = tensor.contiguous().view(STORAGE_TYPES[DTYPE_NAMES[tensor.dtype]]).numpy().tobytes()
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
    return out


# ---------------------------------------------------------------------------------------------------------
# Inputs and output folder.


def test_inputs(config, seed):
    """Right-padded batch with pad_token_id; real tokens avoid the special ids 0..3."""
    generator = torch.Generator().manual_seed(seed + 1000)
    ids = torch.randint(4, config["vocab_size"], (len(ROW_LENGTHS), SEQ_LEN), generator=generator)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for row, n in enumerate(ROW_LENGTHS):
        mask[row, :n] = 1
        if config["type_vocab_size"] > 1:
            types[row, FIRST_TEXT[row]:n] = 1
    return ids.masked_fill(mask == 0, config["pad_token_id"]), types, mask


def write_case(case_name, file_dtype, out, seed):
    case = CASES[case_name]
    config = copy.deepcopy(case["config"])
    config["torch_dtype"] = file_dtype
    weights = random_weights(config, case["num_labels"], seed)
    stored = OrderedDict((n, t.to(FILE_DTYPES[file_dtype]).to(torch.float64)) for n, t in weights.items())
    input_ids, token_type_ids, attention_mask = test_inputs(config, seed)
    hidden = encode(config, stored, input_ids, token_type_ids, attention_mask)
    logits = classify(config, stored, hidden)
    model_dir = os.path.join(out, "model")
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(model_dir, "model.safetensors"),
                      OrderedDict((n, t.to(FILE_DTYPES[file_dtype])) for n, t in weights.items()), {"format": "pt"})
    write_safetensors(os.path.join(out, "expected.safetensors"),
                      OrderedDict([("logits", logits), ("hidden", hidden), ("input_ids", input_ids),
                                   ("token_type_ids", token_type_ids), ("attention_mask", attention_mask)]),
                      {"case": case_name, "dtype": file_dtype, "num_labels": str(case["num_labels"])})
    return logits


# ---------------------------------------------------------------------------------------------------------
# --self-test


def self_test():
    failures = []

    def check(condition, what):
        print(("ok   " if condition else "FAIL ") + what)
        if not condition:
            failures.append(what)

    for name, case in CASES.items():
        config = case["config"]
        w = random_weights(config, case["num_labels"], 0)
        ids, types, mask = test_inputs(config, 0)
        batch = classify(config, w, encode(config, w, ids, types, mask))
        for row, n in enumerate(ROW_LENGTHS):
            alone = classify(config, w, encode(config, w, ids[row:row + 1, :n], types[row:row + 1, :n],
                                               mask[row:row + 1, :n]))
            check(torch.allclose(alone[0], batch[row], atol=1e-12, rtol=0),
                  f"{name}: row {row} alone equals the padded batch")
        if config["model_type"] == "deberta-v2":
            d = deberta(config)
            relative = build_relative_position(SEQ_LEN, d["buckets"], d["max_relative"])
            if d["buckets"] > 0:
                check(relative.abs().max().item() < d["span"] and relative[SEQ_LEN - 1, 0].item() < SEQ_LEN - 1,
                      f"{name}: distances beyond the buckets are compressed")
            else:
                check(relative.abs().max().item() > d["span"], f"{name}: distances reach beyond the span (clamped)")
            plain = copy.deepcopy(config)
            plain["relative_attention"] = False
            plain["norm_rel_ebd"] = "none"
            plain_w = OrderedDict((n, t) for n, t in w.items() if "rel_embeddings" not in n and "encoder.LayerNorm" not in n
                                  and "pos_key_proj" not in n and "pos_query_proj" not in n)
            check(not torch.allclose(classify(plain, plain_w, encode(plain, plain_w, ids, types, mask)), batch),
                  f"{name}: the disentangled attention changes the logits")
        elif config["model_type"] == "roberta":
            positions = position_ids(config, ids)
            check(positions[0].tolist() == list(range(2, 2 + SEQ_LEN)), f"{name}: positions start at padding_idx + 1")
            check(positions[2, ROW_LENGTHS[2]:].eq(1).all().item(), f"{name}: padding sits at padding_idx")
        else:
            flipped = classify(config, w, encode(config, w, ids, torch.zeros_like(types), mask))
            check(not torch.allclose(flipped, batch), f"{name}: token types change the logits")
    path = "/tmp/hf_encoder_reference_selftest.safetensors"
    tensors = OrderedDict([("a", torch.randn(3, 2, dtype=torch.float64)), ("b", torch.arange(5))])
    write_safetensors(path, tensors)
    back = read_safetensors(path)
    os.remove(path)
    check(all(torch.equal(tensors[k], back[k]) for k in tensors), "safetensors round trip")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case")
    parser.add_argument("--dtype", choices=list(FILE_DTYPES), default="float32")
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="every case in every dtype into OUT/<case>/<dtype>/")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if sys.byteorder != "little":
        sys.exit("error: safetensors files are little-endian; this host is not")
    if args.self_test:
        return self_test()
    if args.all and args.out:
        for name in CASES:
            for file_dtype in FILE_DTYPES:
                write_case(name, file_dtype, os.path.join(args.out, name, file_dtype), args.seed)
        return 0
    if not args.case or not args.out:
        parser.error("--case and --out (or --all and --out) are required")
    write_case(args.case, args.dtype, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

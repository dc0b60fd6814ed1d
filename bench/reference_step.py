#!/usr/bin/env python3
"""The Python side of `peftlab bench`: the same training step in PyTorch (Debian's python3-torch, the same
LibTorch 1.13 and OpenBLAS underneath), with Hugging Face PEFT-style LoRA and DoRA layers, so peftlab's step
time can be read as a ratio to what a researcher would get from PEFT on the same machine.

The model is the LLaMA peftlab builds (RMSNorm, rotate-half rotary, matmul attention with a causal mask,
SwiGLU, tied output embedding), randomly initialised. The adapters follow PEFT's code paths:
  LoRA:  result = base_layer(x) + lora_B(lora_A(dropout(x))) * scaling
  DoRA:  result = base_layer(x) + DoraLinearLayer(x), where DoraLinearLayer computes
         lora_weight = lora_B(lora_A(eye)).T; weight_norm = ||W + scaling * lora_weight||_row (detached);
         mag_norm_scale = m / weight_norm;
         (mag_norm_scale - 1) * F.linear(x, W) + mag_norm_scale * lora_B(lora_A(x)) * scaling
(peft/tuners/lora/dora.py, DoraLinearLayer.forward). The step is AdamW on the trainable parameters after a
causal-LM cross-entropy over a batch of random tokens, timed as peftlab times it: the median of `steps` steps
after `warmup`. Prints one JSON line, with this process's peak resident memory (VmHWM).
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class LoraLinear(nn.Module):
    """PEFT's lora.Linear: the base layer plus the low-rank path (and DoRA's extra output when use_dora)."""

    def __init__(self, base, rank, alpha, use_dora):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / rank
        self.use_dora = use_dora
        if use_dora:
            with torch.no_grad():
                self.magnitude = nn.Parameter(base.weight.norm(p=2, dim=1).clone())

    def dora(self, x):
        lora_result = self.lora_B(self.lora_A(x))
        x_eye = torch.eye(self.lora_A.weight.shape[1], dtype=x.dtype)
        lora_weight = self.lora_B(self.lora_A(x_eye)).T
        weight = self.base_layer.weight
        weight_norm = torch.linalg.norm(weight + self.scaling * lora_weight.detach(), dim=1).detach()
        mag_norm_scale = (self.magnitude / weight_norm).view(1, -1)
        return (mag_norm_scale - 1) * F.linear(x, weight) + mag_norm_scale * lora_result * self.scaling

    def forward(self, x):
        result = self.base_layer(x)
        if self.use_dora:
            return result + self.dora(x)
        return result + self.lora_B(self.lora_A(x)) * self.scaling


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, kv = a.dim, a.dim // a.heads * a.kv_heads
        self.heads, self.kv_heads = a.heads, a.kv_heads
        self.input_layernorm = RMSNorm(d, 1e-5)
        self.post_attention_layernorm = RMSNorm(d, 1e-5)
        self.q_proj, self.k_proj = nn.Linear(d, d, bias=False), nn.Linear(d, kv, bias=False)
        self.v_proj, self.o_proj = nn.Linear(d, kv, bias=False), nn.Linear(d, d, bias=False)
        self.gate_proj, self.up_proj = nn.Linear(d, a.hidden, bias=False), nn.Linear(d, a.hidden, bias=False)
        self.down_proj = nn.Linear(a.hidden, d, bias=False)

    def attention(self, x, cos, sin):
        B, T, _ = x.shape
        D = x.shape[-1] // self.heads
        q = self.q_proj(x).view(B, T, self.heads, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv_heads, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv_heads, D).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        group = self.heads // self.kv_heads
        if group > 1:
            k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D)
        mask = torch.arange(T).view(1, T) > torch.arange(T).view(T, 1)
        scores = scores.masked_fill(mask, float("-inf"))
        out = torch.softmax(scores.float(), -1).to(q.dtype) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))

    def forward(self, x, cos, sin):
        h = x + self.attention(self.input_layernorm(x), cos, sin)
        m = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.dim)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim, 1e-5)
        head_dim = a.dim // a.heads
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim // 2, dtype=torch.float64) * 2 / head_dim))
        angles = torch.outer(torch.arange(a.seq_len, dtype=torch.float64), inv_freq)
        self.cos, self.sin = angles.cos().float(), angles.sin().float()

    def forward(self, tokens):
        x = self.embed_tokens(tokens)
        T = tokens.shape[1]
        for layer in self.layers:
            x = layer(x, self.cos[:T], self.sin[:T])
        return F.linear(self.norm(x), self.embed_tokens.weight)


TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def adapt(model, method, rank, alpha):
    for p in model.parameters():
        p.requires_grad_(method == "full")
    if method == "full":
        return
    for layer in model.layers:
        for name in TARGETS:
            setattr(layer, name, LoraLinear(getattr(layer, name), rank, alpha, method == "dora"))


def peak_resident_bytes():
    """This process's high-water mark since exec (VmHWM), as the C++ bench cases report theirs."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--method", choices=["full", "lora", "dora"], default="lora")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import os
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    torch.manual_seed(a.seed)
    model = Llama(a)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    adapt(model, a.method, a.rank, a.alpha)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    tokens = torch.randint(a.vocab, (a.batch, a.seq_len), generator=torch.Generator().manual_seed(a.seed + 1))

    times, loss = [], float("nan")
    for step in range(a.warmup + a.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss_t = F.cross_entropy(logits[:, :-1].float().reshape(-1, a.vocab), tokens[:, 1:].reshape(-1))
        loss_t.backward()
        optimizer.step()
        loss = loss_t.item()
        if step >= a.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"method": a.method, "step_seconds_median": statistics.median(times),
                      "step_seconds_min": min(times), "step_seconds_max": max(times), "final_loss": loss,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "peak_rss_bytes": peak_resident_bytes()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

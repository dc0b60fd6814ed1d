#!/usr/bin/env python3
"""The GPU side of the comparison scripts/gpu_check.sh makes: the training step `peftlab bench --device cuda`
times, done with Hugging Face transformers and PEFT on the same GPU.

The model is transformers' LlamaForCausalLM built from a LlamaConfig whose shape is read from the same
config.json peftlab's bench reads (random weights, transformers' own initialisation), adapted with PEFT's
get_peft_model and LoraConfig(r, lora_alpha, every linear of every layer: q, k, v, o, gate, up, down;
use_dora=True for DoRA). PEFT has no BoRA: a BoRA request is answered with a line that says so. The step is
the one peftlab's runner takes: causal-LM cross-entropy over a batch of random tokens (labels = inputs),
backward, gradient clipping to norm 1, AdamW (lr 1e-4, no weight decay) on the trainable parameters. Timed as
peftlab times it: the median of `steps` steps after `warmup`, each ended by torch.cuda.synchronize().

Precision (--precision, comma-separated):
  autocast   float32 weights, the forward under torch.autocast(bfloat16): the arithmetic of peftlab's `+bf16`
  bf16       the model in bfloat16 (the usual PEFT recipe; PEFT keeps the adapter weights in float32)
  fp32       float32 throughout

Prints one JSON line per (method, precision), as soon as it is measured: median/min/max step time, tokens/s,
peak GPU memory (torch.cuda.max_memory_allocated over building the model, the adapters, the optimizer and the
steps), final loss, trainable parameters, versions. A case that fails prints a line with "error" and the run
goes on; the exit status is 0 when every case was measured, 1 when one failed or transformers, PEFT or a CUDA
device is missing, 2 for bad arguments.

  python3 bench/hf_peft_step.py --config SHAPE/config.json --methods lora,dora --precision autocast \\
      --batch 8 --seq-len 512 --warmup 2 --steps 5
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PRECISIONS = ("autocast", "bf16", "fp32")
METHODS = ("lora", "dora", "bora")


def emit(record, out_file):
    line = json.dumps(record, sort_keys=True)
    print(line, flush=True)
    if out_file:
        with open(out_file, "a") as f:
            f.write(line + "\n")


def fail(message):
    """Bad input: one line, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read_shape(path):
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: cannot read the model config ({e})")
    missing = [k for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                           "vocab_size") if k not in config]
    if missing:
        fail(f"{path}: missing {', '.join(missing)}")
    heads = int(config["num_attention_heads"])
    return {
        "hidden_size": int(config["hidden_size"]),
        "intermediate_size": int(config["intermediate_size"]),
        "num_hidden_layers": int(config["num_hidden_layers"]),
        "num_attention_heads": heads,
        "num_key_value_heads": int(config.get("num_key_value_heads") or heads),
        "vocab_size": int(config["vocab_size"]),
        "max_position_embeddings": int(config.get("max_position_embeddings", 2048)),
        "rms_norm_eps": float(config.get("rms_norm_eps", 1e-5)),
        "rope_theta": float(config.get("rope_theta", 10000.0)),
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
    }


def build_model(torch, transformers, shape, attn, precision, device):
    from transformers import LlamaConfig, LlamaForCausalLM

    fields = dict(shape)
    fields.update(attention_bias=False, mlp_bias=False, hidden_act="silu", use_cache=False,
                  attention_dropout=0.0, initializer_range=0.02)
    rope_theta = fields.pop("rope_theta")
    try:
        config = LlamaConfig(attn_implementation=attn, rope_theta=rope_theta, **fields)
    except TypeError:  # a transformers whose LlamaConfig takes the rope settings elsewhere
        config = LlamaConfig(attn_implementation=attn, **fields)
        config.rope_theta = rope_theta
    # Built on the GPU directly (transformers' initialisation runs there): a 1B model initialised on the CPU
    # costs more time than its steps.
    with torch.device(device):
        model = LlamaForCausalLM(config)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    return model.to(device)


def attention_implementation(model):
    config = getattr(model, "config", None)
    for name in ("_attn_implementation", "attn_implementation"):
        value = getattr(config, name, None)
        if isinstance(value, str):
            return value
    return "unknown"


def run_case(torch, transformers, peft, args, shape, method, precision, device):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(args.seed)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    model = build_model(torch, transformers, shape, args.attn, precision, device)
    lora_config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, bias="none",
                             target_modules=list(TARGETS), use_dora=(method == "dora"), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora_config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    generator = torch.Generator().manual_seed(args.seed + 1)
    tokens = torch.randint(shape["vocab_size"], (args.batch, args.seq_len), generator=generator).to(device)
    autocast = precision == "autocast"

    times, loss = [], float("nan")
    torch.cuda.synchronize(device)
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
            out = model(input_ids=tokens, labels=tokens)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        loss = float(out.loss.detach().float().item())
        if step >= args.warmup:
            times.append(seconds)
    median = statistics.median(times)
    record = {
        "method": method, "precision": precision, "step_seconds_median": median,
        "step_seconds_min": min(times), "step_seconds_max": max(times),
        "tokens_per_second": args.batch * args.seq_len / median, "final_loss": loss,
        "peak_gpu_bytes": int(torch.cuda.max_memory_allocated(device)),
        "trainable_parameters": int(sum(p.numel() for p in trainable)),
        "attn_implementation": attention_implementation(model),
    }
    del model, optimizer, trainable, out, tokens
    gc.collect()
    torch.cuda.empty_cache()
    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="a config.json, or a folder holding one (the model's shape)")
    ap.add_argument("--label", default="", help="the shape's name in the output (default: the config path)")
    ap.add_argument("--methods", default="lora,dora", help="comma-separated: lora, dora, bora")
    ap.add_argument("--precision", default="autocast", help="comma-separated: autocast, bf16, fp32")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--attn", default="sdpa", help="transformers' attn_implementation (sdpa, eager)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="also append every JSON line to this file")
    args = ap.parse_args()

    methods = [m for m in args.methods.split(",") if m]
    precisions = [p for p in args.precision.split(",") if p]
    for m in methods:
        if m not in METHODS:
            fail(f"--methods: unknown method '{m}' ({', '.join(METHODS)})")
    for p in precisions:
        if p not in PRECISIONS:
            fail(f"--precision: unknown precision '{p}' ({', '.join(PRECISIONS)})")
    for name in ("batch", "seq_len", "rank", "steps"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')}: must be positive")
    if args.warmup < 0:
        fail("--warmup: must be 0 or more")
    shape = read_shape(args.config)
    if args.seq_len > shape["max_position_embeddings"]:
        fail(f"--seq-len: {args.seq_len} exceeds the model's context of {shape['max_position_embeddings']}")
    label = args.label or args.config
    common = {"shape": label, "batch": args.batch, "seq_len": args.seq_len, "rank": args.rank,
              "alpha": args.alpha, "warmup": args.warmup, "steps": args.steps}

    try:
        import torch
    except ImportError as e:
        emit(dict(common, error=f"cannot import torch: {e}"), args.out)
        return 1
    versions = {"torch": torch.__version__}
    missing = []
    try:
        import transformers
        versions["transformers"] = transformers.__version__
    except ImportError as e:
        transformers = None
        missing.append(f"transformers ({e})")
    try:
        import peft
        versions["peft"] = peft.__version__
    except ImportError as e:
        peft = None
        missing.append(f"peft ({e})")
    if not torch.cuda.is_available():
        missing.append("a CUDA device (torch.cuda.is_available() is False)")
    if missing:
        emit(dict(common, versions=versions, error="missing: " + "; ".join(missing)), args.out)
        return 1
    device = torch.device(args.device)
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    common.update(versions=versions, device=str(device), gpu=torch.cuda.get_device_name(device))

    status = 0
    for precision in precisions:
        for method in methods:
            if method == "bora":
                emit(dict(common, method=method, precision=precision,
                          missing="PEFT has no BoRA (peftlab's own method)"), args.out)
                continue
            try:
                record = run_case(torch, transformers, peft, args, shape, method, precision, device)
                emit(dict(common, **record), args.out)
            except Exception as e:  # one failing case must not lose the others' results
                status = 1
                emit(dict(common, method=method, precision=precision, error=f"{type(e).__name__}: {e}"), args.out)
                gc.collect()
                try:
                    torch.cuda.empty_cache()
                except Exception:
                    pass
    return status


if __name__ == "__main__":
    sys.exit(main())

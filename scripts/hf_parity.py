#!/usr/bin/env python3
"""Parity of peftlab with Hugging Face transformers and PEFT, for a machine that has both installed.

Three groups of checks, one PASS/FAIL table at the end (exit status 0 only when every row passes):

  reference  tests/reference/hf_decoder_reference.py (the oracle of peftlab's family parity test) against
             transformers itself: each reference case's folder loaded with AutoModelForCausalLM, its logits
             against the reference's expected logits (float64 and float32 files).
  base       tiny random llama, mistral and qwen2 models built with LlamaConfig / MistralConfig / Qwen2Config
             and saved with save_pretrained(safe_serialization=True): peftlab's logits against transformers'.
  adapter    for each family, a LoRA and a DoRA adapter trained for a few steps by `peftlab run` and written by
             `peftlab export`: PeftModel.from_pretrained loads it, and its logits equal peftlab's with the same
             adapter (and differ from the base model's, so the adapter is not a no-op).

peftlab's logits come from `peftlab logits --model DIR [--adapter DIR] --input IDS.json --out LOGITS.safetensors`
when the binary has that verb. Without it the base and adapter groups fall back to greedy generation from BOS
(`peftlab generate --max-new-tokens N` against transformers' generate(do_sample=False)), compared as text
decoded with the SentencePiece tokenizer both sides use; that is weaker (a near-tie may flip a token) and the
table says which comparison each row made.

Needs: torch, transformers, peft, sentencepiece (for the greedy fallback), numpy; a built peftlab; the
stories260K SentencePiece tokenizer (tok512.model, 512 pieces) that the tiny models share, from the data root.

  python3 scripts/hf_parity.py --peftlab build/peftlab [--tokenizer PATH/tok512.model] [--work DIR]
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_SCRIPT = os.path.join(ROOT, "tests", "reference", "hf_decoder_reference.py")

# Tolerances on max |difference| of logits at real (unpadded) positions.
# transformers computes rotary tables, RMSNorm and the attention softmax in float32 even in a float64 model.
REFERENCE_TOLERANCE = {"float64": 1e-5, "float32": 1e-4}
PEFTLAB_TOLERANCE = 2e-4                                 # float32 on both sides
ADAPTER_MIN_EFFECT = 1e-3                                # an adapter must move the logits at least this much

# The tiny models of the base and adapter groups: the reference cases' features, with the tokenizer's vocabulary.
VOCAB = 512
FAMILIES = {
    "llama": dict(
        config_class="LlamaConfig",
        kwargs=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=24, max_position_embeddings=256, rms_norm_eps=1e-5,
                    rope_theta=500000.0, attention_bias=True, mlp_bias=True, tie_word_embeddings=False,
                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    "mistral": dict(
        config_class="MistralConfig",
        kwargs=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=32, max_position_embeddings=256, rms_norm_eps=1e-5,
                    rope_theta=1000000.0, sliding_window=5, tie_word_embeddings=False)),
    "qwen2": dict(
        config_class="Qwen2Config",
        kwargs=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=1000000.0,
                    use_sliding_window=False, sliding_window=4, max_window_layers=1, tie_word_embeddings=True)),
}
ROW_LENGTHS = [12, 9, 5]


class Table:
    def __init__(self):
        self.rows = []

    def add(self, group, name, passed, detail):
        self.rows.append((group, name, "PASS" if passed else "FAIL", detail))
        print(f"{'PASS' if passed else 'FAIL'}  {group:9s} {name:28s} {detail}", flush=True)

    def fail(self, group, name, error):
        self.add(group, name, False, f"error: {error}")

    def print(self):
        widths = [max(len(str(r[i])) for r in self.rows + [("group", "check", "result", "detail")]) for i in range(4)]
        line = "  ".join("{:%d}" % w for w in widths)
        print()
        print(line.format("group", "check", "result", "detail"))
        print(line.format(*("-" * w for w in widths)))
        for row in self.rows:
            print(line.format(*row))
        failed = sum(1 for r in self.rows if r[2] == "FAIL")
        print(f"\n{len(self.rows) - failed} passed, {failed} failed")
        return failed == 0


def load_reference_module():
    spec = importlib.util.spec_from_file_location("hf_decoder_reference", REFERENCE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_tokenizer():
    for root in [os.environ.get("PEFTLAB_DATA"), os.path.join(ROOT, "data"), os.path.join(ROOT, "..", "shared", "data")]:
        if root:
            path = os.path.join(root, "models", "stories260K", "tok512.model")
            if os.path.exists(path):
                return path
    return None


def max_real_difference(got, expected, attention_mask):
    real = attention_mask.bool()
    return float((got.double()[real] - expected.double()[real]).abs().max())


def test_batch(vocab, seed=0):
    """Right-padded input_ids and attention_mask (B, T), BOS first in every row."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (len(ROW_LENGTHS), max(ROW_LENGTHS)), generator=generator)
    ids[:, 0] = 1
    mask = torch.zeros_like(ids)
    for row, n in enumerate(ROW_LENGTHS):
        mask[row, :n] = 1
    return ids.masked_fill(mask == 0, 0), mask


# ---- peftlab ---------------------------------------------------------------------------------------------


class Peftlab:
    def __init__(self, binary):
        self.binary = binary
        probe = subprocess.run([binary, "logits", "--help"], capture_output=True, text=True)
        self.has_logits = probe.returncode == 0

    def run(self, *args, cwd=None):
        result = subprocess.run([self.binary, *args], capture_output=True, text=True, cwd=cwd)
        if result.returncode != 0:
            raise RuntimeError(f"peftlab {' '.join(args)} exited {result.returncode}: "
                               f"{(result.stdout + result.stderr).strip()[-2000:]}")
        return result.stdout

    def logits(self, model_dir, ids, mask, work, adapter=None):
        import torch
        reference = load_reference_module()
        inputs = os.path.join(work, "ids.json")
        out = os.path.join(work, "logits.safetensors")
        with open(inputs, "w") as f:
            json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist()}, f)
        args = ["logits", "--model", model_dir, "--input", inputs, "--out", out]
        if adapter:
            args += ["--adapter", adapter]
        self.run(*args)
        _, tensors = reference.read_safetensors(out)
        return tensors["logits"].to(torch.float64)

    def greedy_text(self, model_dir, new_tokens, adapter=None):
        args = ["generate", "--model", model_dir, "--max-new-tokens", str(new_tokens), "--temperature", "0"]
        if adapter:
            args += ["--adapter", adapter]
        return self.run(*args).strip()


# ---- transformers ------------------------------------------------------------------------------------------


def hf_model(folder, dtype, adapter=None):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=dtype, attn_implementation="eager")
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, adapter)
    return model.eval()


def hf_logits(model, ids, mask):
    import torch
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits.double()


def hf_greedy_text(model, tokenizer_path, new_tokens):
    import sentencepiece
    import torch
    with torch.no_grad():
        out = model.generate(input_ids=torch.tensor([[1]]), attention_mask=torch.ones(1, 1, dtype=torch.long),
                             max_new_tokens=new_tokens, do_sample=False, eos_token_id=2, pad_token_id=0)
    generated = out[0, 1:].tolist()
    # peftlab stops at BOS or EOS.
    for i, token in enumerate(generated):
        if token in (1, 2):
            generated = generated[:i]
            break
    return sentencepiece.SentencePieceProcessor(model_file=tokenizer_path).decode(generated).strip()


def build_tiny_model(family, folder, tokenizer_path, seed=0):
    """A random tiny model of the family, saved with save_pretrained, with the shared tokenizer beside it.
    Weights are redrawn at 1/sqrt(fan_in) so that logits are of order one (transformers' 0.02 init makes
    them tiny and any tolerance meaningless)."""
    import math
    import torch
    import transformers
    spec = FAMILIES[family]
    config = getattr(transformers, spec["config_class"])(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2,
                                                         pad_token_id=0, **spec["kwargs"])
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(0.4 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(tokenizer_path, os.path.join(folder, "tokenizer.model"))
    return model.eval()


def train_adapter(peftlab, family, method, model_dir, work):
    """A few steps of `peftlab run` with `method` on every linear layer, then `peftlab export`; returns the
    adapter folder."""
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("Once upon a time there was a little dog. The dog liked to run in the park.\n" * 40)
    spec = os.path.join(work, f"{family}-{method}.yaml")
    runs = os.path.join(work, f"runs-{family}-{method}")
    with open(spec, "w") as f:
        f.write(f"""name: parity_{family}_{method}
model:
  path: {model_dir}
methods:
  - {{name: {method}, rank: 4, alpha: 8, targets: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]}}
tasks:
  - {{name: lm, train_file: {corpus}, block_size: 32}}
seeds: [0]
train:
  lr: 1.0e-2
  batch_size: 4
  max_steps: 4
  warmup_steps: 0
  eval_every: 4
""")
    peftlab.run("run", spec, "--out", runs, "--no-table")
    run_dirs = [dirpath for dirpath, _, files in os.walk(runs) if "run.h5" in files]
    if len(run_dirs) != 1:
        raise RuntimeError(f"expected one finished run under {runs}, found {run_dirs}")
    adapter = os.path.join(work, f"adapter-{family}-{method}")
    peftlab.run("export", run_dirs[0], "--out", adapter)
    return adapter


# ---- the checks ------------------------------------------------------------------------------------------


def check_reference(table, work):
    import torch
    reference = load_reference_module()
    for case in reference.CASES:
        for dtype_name, dtype in [("float64", torch.float64), ("float32", torch.float32)]:
            name = f"{case} {dtype_name}"
            try:
                out = os.path.join(work, "reference", case, dtype_name)
                reference.write_case(case, dtype_name, out, seed=0)
                _, expected = reference.read_safetensors(os.path.join(out, "expected.safetensors"))
                model = hf_model(os.path.join(out, "model"), dtype)
                got = hf_logits(model, expected["input_ids"], expected["attention_mask"])
                difference = max_real_difference(got, expected["logits"], expected["attention_mask"])
                tolerance = REFERENCE_TOLERANCE[dtype_name]
                table.add("reference", name, difference < tolerance,
                          f"max |diff| {difference:.2e} (tolerance {tolerance:g})")
            except Exception as error:  # one failing case must not hide the others
                table.fail("reference", name, error)


def check_base(table, peftlab, tokenizer, work):
    folders = {}
    for family in FAMILIES:
        try:
            folder = os.path.join(work, "base", family)
            model = build_tiny_model(family, folder, tokenizer)
            folders[family] = folder
            if peftlab.has_logits:
                ids, mask = test_batch(VOCAB)
                expected = hf_logits(model, ids, mask)
                got = peftlab.logits(folder, ids, mask, work)
                difference = max_real_difference(got, expected, mask)
                table.add("base", f"{family} logits", difference < PEFTLAB_TOLERANCE,
                          f"max |diff| {difference:.2e} (tolerance {PEFTLAB_TOLERANCE:g})")
            else:
                theirs = hf_greedy_text(model, tokenizer, 24)
                ours = peftlab.greedy_text(folder, 24)
                table.add("base", f"{family} greedy text", theirs == ours and len(theirs) > 0,
                          f"transformers {theirs!r} / peftlab {ours!r} (no `peftlab logits`: text fallback)")
        except Exception as error:
            table.fail("base", family, error)
    return folders


def check_adapters(table, peftlab, tokenizer, folders, work):
    for family, folder in folders.items():
        for method in ["lora", "dora"]:
            name = f"{family} {method}"
            try:
                adapter = train_adapter(peftlab, family, method, folder, work)
                with open(os.path.join(adapter, "adapter_config.json")) as f:
                    config = json.load(f)
                if bool(config.get("use_dora", False)) != (method == "dora"):
                    raise RuntimeError(f"adapter_config.json use_dora is {config.get('use_dora')}")
                base = hf_model(folder, None)
                adapted = hf_model(folder, None, adapter=adapter)
                ids, mask = test_batch(VOCAB, seed=1)
                effect = max_real_difference(hf_logits(adapted, ids, mask), hf_logits(base, ids, mask), mask)
                if effect < ADAPTER_MIN_EFFECT:
                    raise RuntimeError(f"the adapter changes transformers' logits by only {effect:.1e}")
                if peftlab.has_logits:
                    got = peftlab.logits(folder, ids, mask, work, adapter=adapter)
                    difference = max_real_difference(got, hf_logits(adapted, ids, mask), mask)
                    table.add("adapter", name, difference < PEFTLAB_TOLERANCE,
                              f"max |diff| {difference:.2e} (tolerance {PEFTLAB_TOLERANCE:g}; adapter moves "
                              f"logits by {effect:.2e})")
                else:
                    theirs = hf_greedy_text(adapted, tokenizer, 24)
                    ours = peftlab.greedy_text(folder, 24, adapter=adapter)
                    table.add("adapter", name, theirs == ours and len(theirs) > 0,
                              f"transformers {theirs!r} / peftlab {ours!r} (text fallback)")
            except Exception as error:
                table.fail("adapter", name, error)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peftlab", default=os.path.join(ROOT, "build", "peftlab"), help="the peftlab binary")
    parser.add_argument("--tokenizer", default=default_tokenizer(),
                        help="stories260K tok512.model (default: from the data root)")
    parser.add_argument("--work", help="working folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--only", choices=["reference", "base", "adapter"], action="append",
                        help="run only these groups (repeatable; adapter needs base)")
    args = parser.parse_args()

    try:
        import torch
        import transformers
    except ImportError as error:
        print(f"FAIL  {error}: this script needs torch and transformers (and peft for the adapter group)")
        return 1
    try:
        import peft
        peft_version = peft.__version__
    except ImportError:
        peft_version = "not installed"
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft_version}")
    groups = set(args.only or ["reference", "base", "adapter"])
    if "adapter" in groups:
        groups.add("base")
    table = Table()

    work = args.work or tempfile.mkdtemp(prefix="peftlab-hf-parity-")
    os.makedirs(work, exist_ok=True)
    try:
        if "reference" in groups:
            check_reference(table, work)
        if "base" in groups or "adapter" in groups:
            if not os.access(args.peftlab, os.X_OK):
                table.fail("base", "peftlab binary", f"{args.peftlab} is not an executable (build it, or --peftlab)")
            elif not args.tokenizer or not os.path.exists(args.tokenizer):
                table.fail("base", "tokenizer", "tok512.model not found (--tokenizer PATH)")
            else:
                peftlab = Peftlab(args.peftlab)
                print(f"peftlab logits verb: {'yes' if peftlab.has_logits else 'no (greedy text fallback)'}")
                folders = check_base(table, peftlab, args.tokenizer, work)
                if "adapter" in groups:
                    check_adapters(table, peftlab, args.tokenizer, folders, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if table.print() else 1


if __name__ == "__main__":
    sys.exit(main())

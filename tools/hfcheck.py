#!/usr/bin/env python3
"""make hfcheck: exported checkpoints load in Hugging Face transformers and compute what ablate
computes. For every mapped configuration (Llama MHA/GQA/MQA, Mistral's window, Qwen3's QK-norm
with and without a window) it trains a tiny model with ablate, exports it, and checks:
  - config.json names the expected architecture;
  - tokenizers' Tokenizer.from_file(tokenizer.json) maps every byte of a UTF-8 text to its byte
    value and decodes back to the text;
  - AutoModelForCausalLM.from_pretrained(DIR) in fp32 gives the loss `ablate eval` gives on the
    same tokens (one window of T+1 bytes: the validation half of a 2(T+1)-byte text) within 1e-4;
  - model.generate (greedy) continues a prompt with the same ids as ablate's reference.
An unmapped configuration (post-norm) must export as AblateForCausalLM with a terminal line.
Usage: hfcheck.py ABLATE TEXT WORKDIR. Ends with "N passed, N failed"."""
import json, os, subprocess, sys

ablate, text, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work, exist_ok=True)
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

torch.manual_seed(0)
passed = failed = 0

def check(ok, what):
    global passed, failed
    if ok: passed += 1
    else: failed += 1
    print(("ok   " if ok else "FAIL ") + what, flush=True)

def run(*args):
    r = subprocess.run([ablate, *args], capture_output=True, text=True)
    if r.returncode:
        print(r.stdout, r.stderr)
        raise SystemExit(f"ablate {' '.join(args)} exited {r.returncode}")
    return r

T = 64
corpus = open(text, "rb").read()
train_text = os.path.join(work, "train.txt")
cut = min(100000, len(corpus) * 8 // 10)  # train on the first part, evaluate on text after it
open(train_text, "wb").write(corpus[:cut])
evalbytes = corpus[cut + 1000:cut + 1000 + 2 * (T + 1)]
assert len(evalbytes) == 2 * (T + 1), f"{text} is too short ({len(corpus)} bytes)"
eval_text = os.path.join(work, "eval.txt")
open(eval_text, "wb").write(evalbytes)
prompt = "And God said, Let there be"
steps = 24

configs = [  # name, ablate flags, architecture
    ("gqa", ["--kv-heads", "2"], "LlamaForCausalLM"),
    ("mha", ["--attn", "mha"], "LlamaForCausalLM"),
    ("mqa", ["--attn", "mqa"], "LlamaForCausalLM"),
    ("swa", ["--attn", "swa", "--window", "16"], "MistralForCausalLM"),
    ("qknorm", ["--kv-heads", "2", "--qk-norm"], "Qwen3ForCausalLM"),
    ("qknorm-swa", ["--kv-heads", "2", "--qk-norm", "--window", "16"], "Qwen3ForCausalLM"),
]
common = ["--layers", "2", "--d-model", "64", "--heads", "4", "--seq", str(T), "--batch", "8", "--steps", "150",
          "--lr", "1e-2", "--data", train_text, "--log-every", "100", "--eval-every", "1000"]

for name, flags, arch in configs:
    ck = os.path.join(work, name + ".safetensors")
    out = os.path.join(work, name)
    run("train", *common, *flags, "--save", ck)
    run("export", ck, "--out", out)
    cfg = json.load(open(os.path.join(out, "config.json")))
    check(cfg["architectures"] == [arch], f"{name}: config.json names {cfg['architectures']} (expected {arch})")
    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    s = "In the beginning \"God\" créated\t the heaven \\ and the earth 🌍.\n"
    ids = tok.encode(s).ids
    check(ids == list(s.encode("utf-8")) and tok.decode(ids) == s, f"{name}: tokenizer.json maps bytes to their values")
    ours = json.loads(run("eval", ck, "--data", eval_text, "--val-frac", "0.5", "--json").stdout)
    model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    model.eval()
    val = evalbytes[len(evalbytes) - int(len(evalbytes) * 0.5):]
    x = torch.tensor([list(val)])
    with torch.no_grad():
        hf_loss = model(x, labels=x).loss.item()
    check(ours["tokens"] == T and abs(hf_loss - ours["loss"]) < 1e-4,
          f"{name}: loss transformers {hf_loss:.6f} vs ablate eval {ours['loss']:.6f} over {ours['tokens']:.0f} tokens")
    g = run("eval", ck, "--greedy-check", str(steps), "--prompt", prompt).stdout.split()
    ours_ids = [int(v) for v in g[1:]]
    p = torch.tensor([list(prompt.encode())])
    with torch.no_grad():
        hf_ids = model.generate(p, max_new_tokens=steps, do_sample=False, attention_mask=torch.ones_like(p),
                                pad_token_id=0)[0, p.shape[1]:].tolist()
    check(hf_ids == ours_ids, f"{name}: greedy continuation {bytes(hf_ids)!r} (ablate: {bytes(ours_ids)!r})")

ck = os.path.join(work, "post.safetensors")
run("train", *common, "--norm", "post", "--steps", "2", "--save", ck)
r = run("export", ck, "--out", os.path.join(work, "post"))
cfg = json.load(open(os.path.join(work, "post", "config.json")))
check(cfg["architectures"] == ["AblateForCausalLM"] and "AblateForCausalLM" in r.stderr and "ablate_doc" in cfg,
      "post-norm: exported as AblateForCausalLM, documented, and said so on the terminal")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)

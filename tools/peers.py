#!/usr/bin/env python3
"""tools/peers.py - the PyTorch side of `ablate bench`: the same shapes, the same FLOP counts.

Usage (on a machine with PyTorch and a CUDA GPU; tools/bench_peers.sh runs it next to ablate):
    python3 tools/peers.py [--only train|attn|gdn[,..]] [--steps N] [--json FILE]
                           [--ablate-logs DIR] [--dry-run]

Parts (each can be skipped with --only; a part whose backend is missing prints "n/a" and why,
and the other parts still run):
  train  SmolLM2-135M as transformers' LlamaForCausalLM built from a config that matches
         smollm.h (vocab 49152, d 576, 30 layers, 9 heads, 3 KV heads, ffn 1536, tied
         embeddings, RoPE theta 100000, RMSNorm eps 1e-5, no biases), (a) batch 16 x 2048 and
         (b) 4 layers at 4 x 512, random tokens and targets as ablate's bench. fp32 weights
         (the master copy) under bf16 autocast, fused AdamW (lr 3e-3, betas 0.9/0.95, eps 1e-8,
         weight decay 0.1), gradient clipping at 1.0: what train.h does. Eager and
         torch.compile; WARMUP steps excluded, then --steps timed steps ((b) 4x as many, as
         ablate), torch.cuda.synchronize around the timed loop; tokens/s, TFLOP/s from the FLOP
         per token `ablate bench --dry-run` prints, peak allocated memory.
  attn   causal attention alone, PyTorch SDPA with the cuDNN and the flash backends, head dim 64
         and 128, T 512 to 16384, B*T = 65536, H 16 (ablate bench --only attn: hd 64, T up to
         8192), [B, H, T, hd] bf16 inputs uniform in [-0.5, 0.5); forward and forward+backward
         TFLOP/s with ablate's count: forward 4 B H T^2 hd / 2, forward+backward 3.5 x that.
  gdn    the Gated DeltaNet chunk kernel of flash-linear-attention (fla.ops.gated_delta_rule.
         chunk_gated_delta_rule) at ablate bench --only mech's shapes: T 2048, 8192, 16384,
         B*T = 65536, H 16, hd 64, chunk 64, scale 0.125, q k v bf16 uniform in [-0.5, 0.5),
         log decay g fp32 in [-0.1, -0.01), beta fp32 in [0.2, 0.8); forward and
         forward+backward ms (dq dk dv dg dbeta, as ablate's backward). fla 0.6 refuses its
         gated backward (chunk_bwd_dqkwg) with a Triton from 3.4.0 to before 3.7.1 on Hopper,
         whose numerics that Triton gets wrong (fla issue 640); PyTorch 2.11 brings such a
         Triton. The time does not depend on those numerics, so on that refusal this script
         sets the flag the guard reads (lift_fla_guard) and times again; the row says so
         ("guard lifted": a timing, not a check of fla's results).

fla is not installed on the GPU machine and there is no network there. Download it here, once,
into the ignored folder build/wheels/ (fla-core holds the kernels; einops is its one pure-python
dependency; triton comes with torch; the flash-linear-attention package itself only adds the
model layers and would pull in a newer transformers):
    pip download --no-deps -d build/wheels fla-core einops
and carry build/wheels to the GPU machine. This script unpacks every build/wheels/*.whl (a wheel
is a zip) into build/pydeps/ and puts that folder on sys.path before importing fla.

--json FILE writes every number (and every "n/a" with its reason). --ablate-logs DIR reads
ablate's bench logs DIR/train.log, DIR/attn.log, DIR/mech.log (tools/bench_peers.sh writes
them) and prints a side-by-side table last: ablate against each peer, one row per shape.
--dry-run imports nothing heavy and times nothing: it prints the shapes and FLOP counts (the
lines `ablate bench --dry-run` prints must appear verbatim: tests/peers_dryrun.sh checks it),
then the side-by-side table filled with made-up numbers, to show its layout.
"""
import argparse
import glob
import json
import os
import re
import sys
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("train", "attn", "gdn")
WARMUP = 3  # steps or calls before timing: torch.compile compiles and fla autotunes in these
TOKENS = 65536  # B * T of the kernel shapes, as ablate's bench

# SmolLM2-135M as smollm.h resolves it (ablate bench --dry-run prints the same numbers)
SMOL = dict(vocab=49152, d=576, layers=30, heads=9, kv_heads=3, ffn=1536, theta=100000, eps=1e-5)
TRAIN_SHAPES = [("a", 30, 16, 2048), ("b", 4, 4, 512)]  # part, layers, B, T
ATTN_HDS, ATTN_TS, ATTN_H, ATTN_REPS = (64, 128), (512, 2048, 8192, 16384), 16, 20
GDN_TS, GDN_H, GDN_HD, GDN_CHUNK, GDN_SCALE = (2048, 8192, 16384), 16, 64, 64, 0.125


# ---- FLOP counts: the formulas ablate uses (smollm_train_flops_per_token, bench_attn_flops) ----

def train_flop_per_token(layers, T, c=SMOL):
    """3 x forward: LM head, then per layer the attention projections (2 x params), QK^T and PV
    over the (T + 1) / 2 keys a causal query sees on average, and the SwiGLU FFN (3 matrices)."""
    hd = c["d"] // c["heads"]
    attn_params = c["d"] * c["heads"] * hd * 2 + c["d"] * c["kv_heads"] * hd * 2  # q, o; k, v
    per_layer = 2.0 * attn_params + 4.0 * c["heads"] * hd * (T + 1) / 2.0 + 2.0 * 3 * c["d"] * c["ffn"]
    return 3 * (2.0 * c["d"] * c["vocab"] + layers * per_layer)


def smol_params(layers, c=SMOL):
    """parameters of the model smollm.h builds (134,515,008 at 30 layers, Hugging Face's count)"""
    hd = c["d"] // c["heads"]
    attn = c["d"] * c["heads"] * hd * 2 + c["d"] * c["kv_heads"] * hd * 2
    return c["vocab"] * c["d"] + layers * (attn + 3 * c["d"] * c["ffn"] + 2 * c["d"]) + c["d"]


def attn_flop(B, H, T, hd):
    """one causal forward: QK^T and PV over half the scores; forward+backward is 3.5x"""
    return 4.0 * B * H * T * T * hd / 2


def dry_run_lines():
    c = SMOL
    out = []
    for part, layers, B, T in TRAIN_SHAPES:
        out.append("params layers=%d %d" % (layers, smol_params(layers)))
        out.append("train part=%s attn=gqa layers=%d d=%d heads=%d kv_heads=%d ffn=%d vocab=%d theta=%d B=%d T=%d "
                   "flop_per_token=%.0f" % (part, layers, c["d"], c["heads"], c["kv_heads"], c["ffn"], c["vocab"],
                                            c["theta"], B, T, train_flop_per_token(layers, T)))
    for hd in ATTN_HDS:
        for T in ATTN_TS:
            f = attn_flop(TOKENS // T, ATTN_H, T, hd)
            out.append("attn hd=%d B=%d H=%d T=%d fwd_flop=%.0f fwdbwd_flop=%.0f" % (hd, TOKENS // T, ATTN_H, T, f, 3.5 * f))
    for T in GDN_TS:
        out.append("gdn B=%d H=%d T=%d hd=%d chunk=%d scale=%g g=[-0.1,-0.01) beta=[0.2,0.8)"
                   % (TOKENS // T, GDN_H, T, GDN_HD, GDN_CHUNK, GDN_SCALE))
    return out


# ---- the parts: each returns {key: result dict}, a result being numbers or {"na": reason} ----

def na(reason):
    return {"na": reason}


def short_error(e):
    msg = str(e).strip().splitlines()
    return "%s: %s" % (type(e).__name__, msg[0][:160] if msg else "")


def add_wheels():
    """unpack build/wheels/*.whl into build/pydeps (once per wheel) and import from there"""
    wheels = sorted(glob.glob(os.path.join(ROOT, "build", "wheels", "*.whl")))
    dest = os.path.join(ROOT, "build", "pydeps")
    for w in wheels:
        stamp = os.path.join(dest, ".unpacked-" + os.path.basename(w))
        if not os.path.exists(stamp):
            os.makedirs(dest, exist_ok=True)
            with zipfile.ZipFile(w) as z:
                z.extractall(dest)
            open(stamp, "w").close()
    if wheels and dest not in sys.path:
        sys.path.insert(0, dest)
    return len(wheels)


def import_torch():
    """torch with a CUDA device, or the reason there is none"""
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        return None, "torch not importable (%s)" % short_error(e)
    if not torch.cuda.is_available():
        return None, "torch %s sees no CUDA device" % torch.__version__
    return torch, None


def free_cuda(torch):
    import gc
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def run_train(torch, steps):
    res = {}
    try:
        import torch.nn.functional as F
        from transformers import LlamaConfig, LlamaForCausalLM
    except Exception as e:
        for part, _, _, _ in TRAIN_SHAPES:
            for mode in ("eager", "compile"):
                res["train_%s_%s" % (part, mode)] = na("transformers not importable (%s)" % short_error(e))
        return res
    c = SMOL
    for part, layers, B, T in TRAIN_SHAPES:
        n_steps = steps * (4 if part == "b" else 1)  # as ablate: (b) takes 4x the steps
        fpt = train_flop_per_token(layers, T)
        for mode in ("eager", "compile"):
            key = "train_%s_%s" % (part, mode)
            model = opt = fwd = None
            try:
                free_cuda(torch)
                torch.manual_seed(0)
                # rope_theta as a keyword: transformers 4 keeps it, 5 folds it into rope_parameters
                cfg = LlamaConfig(vocab_size=c["vocab"], hidden_size=c["d"], intermediate_size=c["ffn"],
                                  num_hidden_layers=layers, num_attention_heads=c["heads"],
                                  num_key_value_heads=c["kv_heads"], tie_word_embeddings=True,
                                  rope_theta=float(c["theta"]), rms_norm_eps=c["eps"], max_position_embeddings=max(T, 2048),
                                  attention_bias=False, mlp_bias=False, hidden_act="silu", attn_implementation="sdpa")
                rp = getattr(cfg, "rope_parameters", None)
                theta = rp.get("rope_theta") if isinstance(rp, dict) else getattr(cfg, "rope_theta", None)
                if theta != c["theta"]:
                    raise ValueError("the Llama config took rope theta %r, expected %d" % (theta, c["theta"]))
                model = LlamaForCausalLM(cfg).cuda()  # fp32 master weights
                model.train()
                n_params = sum(p.numel() for p in model.parameters())  # tied: the embedding counts once
                if n_params != smol_params(layers):
                    raise ValueError("the Llama model has %d parameters, expected %d (smollm.h's count)"
                                     % (n_params, smol_params(layers)))
                fwd = torch.compile(model) if mode == "compile" else model
                opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                                        fused=True)

                def step():
                    x = torch.randint(0, c["vocab"], (B, T), device="cuda")
                    y = torch.randint(0, c["vocab"], (B, T), device="cuda")
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        logits = fwd(input_ids=x).logits
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()
                    opt.zero_grad(set_to_none=True)

                for _ in range(WARMUP):
                    step()
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(n_steps):
                    step()
                torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) / n_steps
                tps = B * T / dt
                res[key] = {"tok_s": tps, "tflops": fpt * tps / 1e12, "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
                            "step_ms": dt * 1e3, "flop_per_token": fpt, "B": B, "T": T, "layers": layers,
                            "params": n_params, "attn_impl": getattr(model.config, "_attn_implementation", None),
                            "precision": "bf16 autocast, fp32 master weights"}
            except Exception as e:
                res[key] = na(short_error(e))
            model = opt = fwd = step = None  # the closures hold the model too
            if mode == "compile":
                try:
                    torch._dynamo.reset()
                except Exception:
                    pass
            free_cuda(torch)
    return res


def time_calls(torch, fn, reps):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def uniform(torch, shape, lo, hi, dtype):
    return (torch.rand(shape, device="cuda", dtype=torch.float32) * (hi - lo) + lo).to(dtype)


def run_attn(torch):
    res = {}
    try:
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
        backends = [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)]
    except Exception as e:
        for hd in ATTN_HDS:
            for T in ATTN_TS:
                for b in ("cudnn", "flash"):
                    res["attn_hd%d_T%d_%s" % (hd, T, b)] = na("torch.nn.attention not importable (%s)" % short_error(e))
        return res
    for hd in ATTN_HDS:
        for T in ATTN_TS:
            B = TOKENS // T
            f = attn_flop(B, ATTN_H, T, hd)
            for name, backend in backends:
                key = "attn_hd%d_T%d_%s" % (hd, T, name)
                try:
                    free_cuda(torch)
                    q, k, v, dout = (uniform(torch, (B, ATTN_H, T, hd), -0.5, 0.5, torch.bfloat16) for _ in range(4))
                    for t in (q, k, v):
                        t.requires_grad_(True)
                    with sdpa_kernel([backend]):
                        fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
                        tf = time_calls(torch, fwd, ATTN_REPS)
                        tb = time_calls(torch, lambda: torch.autograd.grad(fwd(), (q, k, v), dout), ATTN_REPS)
                    res[key] = {"B": B, "H": ATTN_H, "T": T, "hd": hd, "fwd_ms": tf * 1e3, "fwd_tflops": f / tf / 1e12,
                                "fwdbwd_ms": tb * 1e3, "fwdbwd_tflops": 3.5 * f / tb / 1e12}
                    q = k = v = dout = None
                except Exception as e:
                    res[key] = na(short_error(e))
    free_cuda(torch)
    return res


def fla_version():
    try:
        import fla
        return getattr(fla, "__version__", "?")
    except Exception:
        return "?"


# the module and flag of fla's Triton-version guard (fla 0.6: fla/ops/common/chunk_o.py, which
# imports TRITON_ABOVE_3_7_1 from fla.utils and reads it at each call of chunk_bwd_dqkwg)
FLA_GUARD = ("fla.ops.common.chunk_o", "TRITON_ABOVE_3_7_1")
FLA_GUARD_NOTE = "guard lifted: Triton < 3.7.1 on Hopper; timing only, fla's gated backward numerics untrusted"


def lift_fla_guard():
    """Sets the flag fla's guard reads, for timing; returns FLA_GUARD_NOTE, or None when this fla
    has no such guard or it is already open (nothing lifted)."""
    import importlib
    try:
        mod = importlib.import_module(FLA_GUARD[0])
    except Exception:
        return None
    if getattr(mod, FLA_GUARD[1], True):
        return None
    setattr(mod, FLA_GUARD[1], True)
    return FLA_GUARD_NOTE


def run_gdn(torch):
    res = {}
    try:
        add_wheels()
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    except Exception as e:
        for T in GDN_TS:
            res["gdn_T%d_fla" % T] = na("fla not importable (%s; see this script's header: pip download --no-deps "
                                        "-d build/wheels fla-core einops)" % short_error(e))
        return res
    for T in GDN_TS:
        B, key = TOKENS // T, "gdn_T%d_fla" % T
        reps = 5 if T >= 8192 else 10  # as ablate's mech bench
        errors, lifted = [], None
        # beta in fp32 as ablate's; bf16 (as fla's own layers pass it) only if fp32 is refused;
        # a refusal by fla's Triton guard lifts it once and tries the same dtype again
        dtypes, i = (torch.float32, torch.bfloat16), 0
        while i < len(dtypes):
            beta_dtype = dtypes[i]
            try:
                free_cuda(torch)
                q, k, v, dout = (uniform(torch, (B, T, GDN_H, GDN_HD), -0.5, 0.5, torch.bfloat16) for _ in range(4))
                g = uniform(torch, (B, T, GDN_H), -0.1, -0.01, torch.float32)
                beta = uniform(torch, (B, T, GDN_H), 0.2, 0.8, beta_dtype)
                ins = (q, k, v, g, beta)
                for t in ins:
                    t.requires_grad_(True)
                fwd = lambda: chunk_gated_delta_rule(q, k, v, g, beta, scale=GDN_SCALE)[0]
                tf = time_calls(torch, fwd, reps)
                tb = time_calls(torch, lambda: torch.autograd.grad(fwd(), ins, dout), reps)
                res[key] = {"B": B, "H": GDN_H, "T": T, "hd": GDN_HD, "fwd_ms": tf * 1e3, "fwdbwd_ms": tb * 1e3,
                            "beta_dtype": str(beta_dtype).replace("torch.", ""), "fla": fla_version()}
                if lifted:
                    res[key]["note"] = lifted
                break
            except Exception as e:
                if lifted is None and "3.7.1" in str(e):
                    lifted = lift_fla_guard()
                    if lifted:
                        continue  # the same dtype again, the guard open
                errors.append("beta %s: %s" % (str(beta_dtype).replace("torch.", ""), short_error(e)))
            finally:
                q = k = v = dout = g = beta = ins = fwd = None
            i += 1
        if key not in res:
            res[key] = na("; ".join(errors))
    free_cuda(torch)
    return res


# ---- ablate's logs (the formats ablate.c's bench prints) ----

RE_TRAIN = re.compile(r"^\((a|b|cpu)\) .*?\s(\d+)\s+([\d.]+)\s+(?:([\d.]+)%|-)\s+([\d.]+|-)\s+([\d.]+)\s+([\d.]+)\s*$")
RE_ATTN = re.compile(r"^attention hd(\d+)\s+causal B=(\d+)\s+H=(\d+) T=(\d+)\s+fwd\s+([\d.]+) ms\s+([\d.]+) TFLOP/s"
                     r" \| fwd\+bwd\s+([\d.]+) ms\s+([\d.]+) TFLOP/s")
RE_MECH = re.compile(r"^\s*(\d+) \|((?:\s+[\d.]+\s+[\d.]+\s+\|)+)\s*$")


def read(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def parse_ablate(logdir):
    """{key: numbers} from ablate bench's three logs; keys as the peers' (train_a, attn_hd64_T512, gdn_T2048)"""
    out = {}
    for line in read(os.path.join(logdir, "train.log")):
        m = RE_TRAIN.match(line)
        if m and "gqa" in line:  # the first --attn pass (gqa) is the one PyTorch's Llama matches
            out.setdefault("train_" + m.group(1), {"tok_s": float(m.group(2)), "tflops": float(m.group(3)),
                                                    "peak_gb": None if m.group(5) == "-" else float(m.group(5)),
                                                    "step_ms": float(m.group(6))})
    for line in read(os.path.join(logdir, "attn.log")):
        m = RE_ATTN.match(line)
        if m:
            out["attn_hd%s_T%s" % (m.group(1), m.group(4))] = {"fwd_ms": float(m.group(5)), "fwd_tflops": float(m.group(6)),
                                                               "fwdbwd_ms": float(m.group(7)),
                                                               "fwdbwd_tflops": float(m.group(8))}
    for line in read(os.path.join(logdir, "mech.log")):
        m = RE_MECH.match(line)
        if m:
            nums = [float(x) for x in re.findall(r"[\d.]+", m.group(2))]
            if len(nums) >= 6:  # column 3 is "gdn chunk-par", the default GDN kernels
                out["gdn_T%s" % m.group(1)] = {"fwd_ms": nums[4], "fwdbwd_ms": nums[5]}
    return out


# ---- the tables ----

def cell(r, field, fmt):
    if r is None:
        return "-"
    if "na" in r:
        return "n/a"
    v = r.get(field)
    return "-" if v is None else fmt % v


def side_by_side(ablate, peers):
    """one row per shape: ablate, then each peer; "-" where not measured, "n/a" where a peer could not run"""
    lines = []
    row = lambda cols: lines.append("%-34s" % cols[0] + "".join("%16s" % c for c in cols[1:]))
    row(["training (gqa), tok/s | peak GB", "ablate", "torch eager", "torch.compile"])
    for part, layers, B, T in TRAIN_SHAPES:
        a = ablate.get("train_" + part)
        e, c = peers.get("train_%s_eager" % part), peers.get("train_%s_compile" % part)
        row(["(%s) %d layers, %d x %d" % (part, layers, B, T)] +
            [cell(r, "tok_s", "%.0f") if r is None or "na" in r else
             "%s | %s" % (cell(r, "tok_s", "%.0f"), cell(r, "peak_gb", "%.1f")) for r in (a, e, c)])
    row(["attention fwd+bwd, TFLOP/s", "ablate", "sdpa cudnn", "sdpa flash"])
    for hd in ATTN_HDS:
        for T in ATTN_TS:
            key = "attn_hd%d_T%d" % (hd, T)
            row(["hd %d, T %d, B %d, H %d" % (hd, T, TOKENS // T, ATTN_H)] +
                [cell(r, "fwdbwd_tflops", "%.1f") for r in (ablate.get(key), peers.get(key + "_cudnn"),
                                                             peers.get(key + "_flash"))])
    row(["gated deltanet fwd+bwd, ms", "ablate", "fla chunk", ""])
    noted = False
    for T in GDN_TS:
        key = "gdn_T%d" % T
        fla = peers.get(key + "_fla")
        mark = "*" if fla and "note" in fla else ""
        noted = noted or bool(mark)
        row(["T %d, B %d, H %d, hd %d" % (T, TOKENS // T, GDN_H, GDN_HD)] +
            [cell(ablate.get(key), "fwdbwd_ms", "%.2f"), cell(fla, "fwdbwd_ms", "%.2f") + mark, ""])
    if noted:
        lines.append("* fla: " + FLA_GUARD_NOTE)
    return lines


def peers_table(res):
    lines = []
    for key in sorted(res):
        r = res[key]
        if "na" in r:
            lines.append("%-26s n/a: %s" % (key, r["na"]))
        elif key.startswith("train"):
            lines.append("%-26s %10.0f tok/s %7.1f TFLOP/s %6.2f GB peak %8.1f ms/step" %
                         (key, r["tok_s"], r["tflops"], r["peak_gb"], r["step_ms"]))
        elif key.startswith("attn"):
            lines.append("%-26s fwd %8.3f ms %6.1f TFLOP/s | fwd+bwd %8.3f ms %6.1f TFLOP/s" %
                         (key, r["fwd_ms"], r["fwd_tflops"], r["fwdbwd_ms"], r["fwdbwd_tflops"]))
        else:
            lines.append("%-26s fwd %8.3f ms | fwd+bwd %8.3f ms" % (key, r["fwd_ms"], r["fwdbwd_ms"]) +
                         ("  (%s)" % r["note"] if "note" in r else ""))
    return lines


def fake_results():
    """made-up numbers in every field the tables read, one peer left n/a: --dry-run's layout"""
    peers, ablate = {}, {}
    for i, (part, layers, B, T) in enumerate(TRAIN_SHAPES):
        ablate["train_" + part] = {"tok_s": 300000.0 + i, "peak_gb": 15.0, "tflops": 1.0, "step_ms": 1.0}
        peers["train_%s_eager" % part] = {"tok_s": 150000.0 + i, "peak_gb": 50.0, "tflops": 1.0, "step_ms": 2.0}
        peers["train_%s_compile" % part] = na("made up: torch.compile failed")
    for hd in ATTN_HDS:
        for T in ATTN_TS:
            key = "attn_hd%d_T%d" % (hd, T)
            r = {"fwd_ms": 1.0, "fwd_tflops": 500.0, "fwdbwd_ms": 3.0, "fwdbwd_tflops": 400.0 + hd}
            if hd == 64 and T <= 8192:
                ablate[key] = r
            peers[key + "_cudnn"], peers[key + "_flash"] = r, r
    for T in GDN_TS:
        ablate["gdn_T%d" % T] = {"fwd_ms": 1.0, "fwdbwd_ms": 4.0}
        peers["gdn_T%d_fla" % T] = {"fwd_ms": 1.5, "fwdbwd_ms": 5.0}
    peers["gdn_T%d_fla" % GDN_TS[-1]]["note"] = FLA_GUARD_NOTE  # (the footnote's look)
    return ablate, peers


def parse_only(s):
    parts = [p for p in s.split(",") if p]
    for p in parts:
        if p not in PARTS:
            raise argparse.ArgumentTypeError("unknown part '%s': expected %s (comma-separated)" % (p, ", ".join(PARTS)))
    return parts


def main(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch at ablate bench's shapes (see this file's header)")
    ap.add_argument("--only", type=parse_only, default=list(PARTS), help="train, attn, gdn, or a comma list")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps ((b) times 4x as many; default 5)")
    ap.add_argument("--json", metavar="FILE", help="write every number here")
    ap.add_argument("--ablate-logs", metavar="DIR", help="ablate bench's train.log, attn.log, mech.log: side-by-side table")
    ap.add_argument("--dry-run", action="store_true", help="print shapes, FLOP counts and the table with made-up numbers")
    a = ap.parse_args(argv)
    if a.steps < 1:
        ap.error("--steps %d: expected at least 1" % a.steps)

    if a.dry_run:
        print("\n".join(dry_run_lines()))
        ablate, peers = fake_results()
        if a.ablate_logs:  # what was read from real logs, so that a test can check the parsing
            ablate = parse_ablate(a.ablate_logs)
            for key in sorted(ablate):
                print("ablate %s %s" % (key, json.dumps(ablate[key], sort_keys=True)))
        print("\nside by side (made-up peer numbers%s):" % ("" if a.ablate_logs else " and ablate numbers"))
        print("\n".join(side_by_side(ablate, peers)))
        return 0

    torch, why = import_torch()
    res = {}
    for part in PARTS:
        if part not in a.only:
            continue
        print("== %s" % part, flush=True)
        if torch is None:
            keys = {"train": ["train_%s_%s" % (p[0], m) for p in TRAIN_SHAPES for m in ("eager", "compile")],
                    "attn": ["attn_hd%d_T%d_%s" % (hd, T, b) for hd in ATTN_HDS for T in ATTN_TS for b in ("cudnn", "flash")],
                    "gdn": ["gdn_T%d_fla" % T for T in GDN_TS]}[part]
            got = {k: na(why) for k in keys}
        else:
            try:
                got = {"train": lambda: run_train(torch, a.steps), "attn": lambda: run_attn(torch),
                       "gdn": lambda: run_gdn(torch)}[part]()
            except Exception as e:  # a part that breaks outside its own guards still leaves the others
                got = {part: na(short_error(e))}
        print("\n".join(peers_table(got)), flush=True)
        res.update(got)
    if torch is not None:
        res["env"] = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
        print("torch %s on %s" % (res["env"]["torch"], res["env"]["device"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    if a.ablate_logs:
        print("\nside by side:")
        print("\n".join(side_by_side(parse_ablate(a.ablate_logs), res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

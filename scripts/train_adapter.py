#!/usr/bin/env python3
"""Train a low-rank adapter (LoRA) for multilingual-e5-small jointly with sentiment and topic heads.

Run by scripts/train-adapter.sh, which prepares the venv and the token file. Input: the JSON lines of
`citypulse training-tokens` (token ids exactly as the classifier makes them, with the held-out flag
of `train-head`). Output, in --out:
  adapter.safetensors   lora_A [r, in] and lora_B [out, r] per adapted Linear, fp32; metadata:
                        rank, alpha, targets, seed. Merged as W + B·A·alpha/r.
  training.json         options, data files with SHA-256, the learning curve (held-out scores at
                        every evaluation), the chosen evaluation, time and CPU.
  run/checkpoint.pt     the resumable state (adapter, heads, optimiser, step); kept after the end.

Why torch and not candle's autograd: training needs backward passes through all 12 layers; torch's
CPU kernels (oneDNN) run them several times faster than candle's on these 2 cores, and the 90-minute
budget decides how many examples the adapter sees. The shipped model does not depend on torch: the
adapter is merged into the weights by scripts/convert_model.py (numpy), and every backend runs it.

The heads trained here only steer the adapter; the shipped heads are retrained on the merged encoder
with `citypulse train-head`, like the plain ones.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import random
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel

SENTIMENTS = ["negative", "neutral", "positive"]
# The Linear layers an adapter is put on, named as in HF BERT's state dict under encoder.layer.N.
TARGETS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "o": "attention.output.dense",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
}


def log(msg):
    print(f"[train-adapter] {msg}", file=sys.stderr, flush=True)


class LoRALinear(torch.nn.Module):
    """y = W x + b + (alpha/r) · B A x; W and b frozen, A small random, B zero (starts as the plain model)."""

    def __init__(self, base, rank, alpha, gen):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        bound = 1.0 / math.sqrt(base.in_features)
        a = (torch.rand(rank, base.in_features, generator=gen) * 2 - 1) * bound
        self.lora_A = torch.nn.Parameter(a)
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
        self.dropout = torch.nn.Dropout(0.05)

    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scale


def set_module(root, dotted, module):
    parent, _, name = dotted.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def load_encoder(model_dir, rank, alpha, targets, gen):
    cfg = BertConfig.from_json_file(os.path.join(model_dir, "config.json"))
    model = BertModel(cfg, add_pooling_layer=False)
    weights = load_file(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict(weights, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    adapted = []
    for i in range(cfg.num_hidden_layers):
        for t in targets:
            name = f"encoder.layer.{i}.{TARGETS[t]}"
            set_module(model, name, LoRALinear(model.get_submodule(name), rank, alpha, gen))
            adapted.append(name)
    return model, adapted


class Head(torch.nn.Module):
    """The trainer's own head: an MLP on the normalised mean-pooled embedding (scaled: its norm is 1)."""

    def __init__(self, dim, classes, hidden=256):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Dropout(0.1), torch.nn.Linear(hidden, classes)
        )

    def forward(self, emb):
        return self.net(emb * 10.0)


def embed(model, ids, mask):
    """The classifier's embedding: mean over real tokens of the last hidden state, L2-normalised."""
    hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def read_tokens(path):
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    return header, rows


def batches(rows, order, batch_size, pad_id):
    """Batches of `order`, bucketed by length inside windows of 50 batches (less padding, still mixed)."""
    window = batch_size * 50
    out = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: len(rows[i]["ids"]))
        out.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    return out


def tensors(rows, idx, pad_id):
    n = max(len(rows[i]["ids"]) for i in idx)
    ids = torch.full((len(idx), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), n), dtype=torch.long)
    for r, i in enumerate(idx):
        seq = rows[i]["ids"]
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
    return ids, mask


def labels_of(rows, idx, topics):
    s = torch.tensor([SENTIMENTS.index(rows[i]["sentiment"]) if rows[i]["sentiment"] else -100 for i in idx])
    t = torch.tensor([topics.index(rows[i]["topic"]) if rows[i]["topic"] else -100 for i in idx])
    return s, t


def macro_f1(gold, pred, k):
    f1s = []
    for c in range(k):
        tp = sum(1 for g, p in zip(gold, pred) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred) if g == c and p != c)
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / k, f1s


@torch.no_grad()
def evaluate(model, heads, rows, held, files, topics, pad_id):
    """Held-out scores per file with the trainer's heads (a proxy for the shipped heads' scores)."""
    model.eval()
    heads.eval()
    preds = {}
    for idx in batches(rows, held, 64, pad_id):
        ids, mask = tensors(rows, idx, pad_id)
        e = embed(model, ids, mask)
        ps, pt = heads["sentiment"](e).argmax(-1), heads["topic"](e).argmax(-1)
        for j, i in enumerate(idx):
            preds[i] = (int(ps[j]), int(pt[j]))
    out = {}
    for f, info in enumerate(files):
        mine = [i for i in held if rows[i]["file"] == f]
        name = os.path.basename(os.path.dirname(info["path"])) + "/" + os.path.basename(info["path"])
        r = {"rows": len(mine)}
        s = [(SENTIMENTS.index(rows[i]["sentiment"]), preds[i][0]) for i in mine if rows[i]["sentiment"]]
        if s:
            r["sentiment_accuracy"] = sum(g == p for g, p in s) / len(s)
            mf, per = macro_f1([g for g, _ in s], [p for _, p in s], 3)
            r["sentiment_macro_f1"] = mf
            r["neutral_f1"] = per[1]
        t = [(topics.index(rows[i]["topic"]), preds[i][1]) for i in mine if rows[i]["topic"]]
        if t:
            r["topic_accuracy"] = sum(g == p for g, p in t) / len(t)
        out[name] = r
    model.train()
    heads.train()
    return out


def choice_score(scores):
    """One number to choose an evaluation by: the mean of every held-out figure the targets name."""
    vals = []
    for r in scores.values():
        vals += [r[k] for k in ("sentiment_accuracy", "topic_accuracy") if k in r]
    return sum(vals) / len(vals)


class Progress:
    """A progress line with rate and ETA on stderr: redrawn on a terminal, a line every 30 s otherwise."""

    def __init__(self, total, done):
        self.total, self.start_done, self.start = total, done, time.time()
        self.tty, self.last = sys.stderr.isatty(), 0.0

    def update(self, done, extra):
        now = time.time()
        if now - self.last < (1.0 if self.tty else 30.0) and done < self.total:
            return
        self.last = now
        rate = (done - self.start_done) / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        bar = "#" * int(width * done / self.total) + "-" * (width - int(width * done / self.total))
        eta_s = "?" if math.isinf(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
        line = f"[{bar}] {done}/{self.total} steps {100 * done / self.total:5.1f}% {rate:.2f} steps/s ETA {eta_s} {extra}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def save_adapter(model, adapted, path, meta):
    tensors_out = {}
    for name in adapted:
        m = model.get_submodule(name)
        tensors_out[f"{name}.lora_A"] = m.lora_A.detach().contiguous()
        tensors_out[f"{name}.lora_B"] = m.lora_B.detach().contiguous()
    save_file(tensors_out, path + ".tmp", metadata={k: str(v) for k, v in meta.items()})
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--targets", default="q,k,v,o,ffn_in,ffn_out")
    ap.add_argument("--epochs", type=float, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--city-repeat", type=int, default=3, help="times the city rows appear per epoch")
    ap.add_argument("--subsample", type=float, default=1.0, help="fraction of the non-city rows per epoch")
    ap.add_argument("--evals-per-epoch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(os.path.join(args.out, "run"), exist_ok=True)
    ckpt_path = os.path.join(args.out, "run", "checkpoint.pt")
    targets = args.targets.split(",")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        sys.exit(f"unknown --targets {unknown}; choose from {list(TARGETS)}")

    header, rows = read_tokens(args.tokens)
    topics, pad_id, files = header["topics"], header["pad_id"], header["files"]
    train = [i for i, r in enumerate(rows) if not r["held_out"]]
    held = [i for i, r in enumerate(rows) if r["held_out"]]
    city = [i for i in train if rows[i]["topic"]]
    other = [i for i in train if not rows[i]["topic"]]
    log(f"{len(train)} training rows ({len(city)} city), {len(held)} held out; CPU {cpu_name()}, {args.threads} threads")

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model, adapted = load_encoder(args.model_dir, args.rank, args.alpha, targets, gen)
    heads = torch.nn.ModuleDict({"sentiment": Head(384, 3), "topic": Head(384, len(topics))})
    counts = np.bincount([SENTIMENTS.index(rows[i]["sentiment"]) for i in train if rows[i]["sentiment"]], minlength=3)
    class_w = torch.tensor((counts.sum() / (3 * counts)) ** 0.5, dtype=torch.float32)
    lora_params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": lora_params, "lr": args.lr}, {"params": heads.parameters(), "lr": args.head_lr}], weight_decay=0.01
    )

    def epoch_order(epoch):
        rng = random.Random(args.seed * 1000 + epoch)
        picked = rng.sample(other, int(len(other) * args.subsample)) + city * args.city_repeat
        rng.shuffle(picked)
        return batches(rows, picked, args.batch, pad_id)

    steps_per_epoch = len(epoch_order(0))
    total = int(steps_per_epoch * args.epochs)
    warmup = max(1, total // 20)
    eval_every = max(1, steps_per_epoch // args.evals_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    state = {"step": 0, "curve": [], "best": None, "seconds": 0.0}
    run_key = json.dumps({k: v for k, v in vars(args).items() if k not in ("threads", "out")}, sort_keys=True)
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=False)
        if ck["run_key"] != run_key:
            sys.exit(f"{ckpt_path} is from a run with other options; remove it or use another --out")
        model.load_state_dict(ck["model"], strict=False)
        heads.load_state_dict(ck["heads"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        state = ck["state"]
        torch.set_rng_state(ck["rng"])
        log(f"resumed at step {state['step']}/{total}")
    meta = {"rank": args.rank, "alpha": args.alpha, "targets": ",".join(targets), "seed": args.seed}

    def checkpoint():
        lora_state = {k: v for k, v in model.state_dict().items() if "lora_" in k}
        ck = {"run_key": run_key, "model": lora_state, "heads": heads.state_dict(), "opt": opt.state_dict(),
              "sched": sched.state_dict(), "state": state, "rng": torch.get_rng_state()}
        torch.save(ck, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    model.train()
    progress = Progress(total, state["step"])
    started, last_ckpt = time.time() - state["seconds"], time.time()
    loss_avg = state.get("loss_avg")
    while state["step"] < total:
        epoch, within = divmod(state["step"], steps_per_epoch)
        order = epoch_order(epoch)
        for idx in order[within:]:
            if state["step"] >= total:
                break
            ids, mask = tensors(rows, idx, pad_id)
            ys, yt = labels_of(rows, idx, topics)
            e = embed(model, ids, mask)
            loss = torch.nn.functional.cross_entropy(heads["sentiment"](e), ys, weight=class_w, ignore_index=-100)
            if (yt >= 0).any():
                loss = loss + torch.nn.functional.cross_entropy(heads["topic"](e), yt, ignore_index=-100)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora_params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            state["step"] += 1
            loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
            progress.update(state["step"], f"epoch {epoch + 1}/{math.ceil(args.epochs)} loss {loss_avg:.3f}")
            state["seconds"], state["loss_avg"] = time.time() - started, loss_avg
            if state["step"] % eval_every == 0 or state["step"] == total:
                scores = evaluate(model, heads, rows, held, files, topics, pad_id)
                point = {"step": state["step"], "epoch": round(state["step"] / steps_per_epoch, 3),
                         "examples": state["step"] * args.batch, "seconds": round(state["seconds"]),
                         "loss": round(loss_avg, 4), "choice": round(choice_score(scores), 4), "held_out": scores}
                state["curve"].append(point)
                print(file=sys.stderr)
                log(f"step {state['step']}: held-out mean {point['choice']:.4f} " + json.dumps(scores))
                if state["best"] is None or point["choice"] > state["best"]["choice"]:
                    state["best"] = point
                    save_adapter(model, adapted, os.path.join(args.out, "adapter.safetensors"), {**meta, "step": state["step"]})
                checkpoint()
                last_ckpt = time.time()
            elif time.time() - last_ckpt > 300:
                checkpoint()
                last_ckpt = time.time()

    report = {
        "options": vars(args),
        "data": files,
        "tokens_file_sha256": hashlib.sha256(open(args.tokens, "rb").read()).hexdigest(),
        "training_rows": len(train), "held_out_rows": len(held), "steps_per_epoch": steps_per_epoch,
        "cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__,
        "seconds": round(state["seconds"]), "learning_curve": state["curve"], "chosen": state["best"],
        "adapted": len(adapted), "adapter_parameters": sum(p.numel() for p in lora_params),
    }
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"done in {state['seconds'] / 60:.1f} min; chose step {state['best']['step']} (held-out mean {state['best']['choice']:.4f})")


if __name__ == "__main__":
    main()

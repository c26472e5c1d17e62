#!/usr/bin/env python3
"""Train a p5rec P5 model with PyTorch: one CPU, one GPU, or many under torchrun.

p5rec writes the corpus (`p5rec prompts export`) and a model folder (config.json
+ tokenizer.json + initial weights, from `p5rec train ... --steps 1`); this
trains that model on the exported pairs and writes the weights back in the
layout p5rec loads (HF T5 names + P5's `encoder.whole_word_embeddings.weight`),
so `p5rec eval` decodes and scores it like a model trained by p5rec itself.

  python3 -m p5rec.train --model BASE --pairs e0.jsonl.gz e1.jsonl.gz --out TRAINED \\
      --epochs 10 --lr 1e-3 --global-batch 256
  torchrun --nproc_per_node 8 -m p5rec.train ...      # DDP: NCCL on GPUs, gloo on CPUs

Multi-process (torch.distributed, launched by torchrun): every rank holds the
model (DDP), the pairs stream from disk and each global batch is split across
the ranks (p5rec/data.py), the gradients are averaged, the loss is the mean
over the *global* batch's target tokens, so N ranks × G/N examples train the
same steps as 1 process × G (up to float rounding). Rank 0 writes the folder.

Resuming: OUT/hf-train-state.pt (float32 weights, AdamW state, step, epoch and
batch position, the planned schedule) is written every --save-every steps, at
--stop-after and at the end; `--resume` continues from it (with any number of
ranks: the batches do not depend on it) and appends to OUT/hf-train-log.jsonl.

What it mirrors from p5rec (src/p5/corpus.ts, src/tokenizer/whole-word.ts,
src/train): pieces from the same tokenizer.json, sources clipped to
--max-source tokens with `</s>` kept last, whole-word indices (id tokens start
words), targets clipped to 64; AdamW (weight decay 0.01, none on layer norms
and biases; token table at --embedding-lr-scale, item rows at --item-lr-scale, optional
weight average --ema-decay: p5rec/optim_extras.py), epsilon 1e-6, linear warmup
over 5% of the steps then linear decay, gradient clipping at 1.0, dropout
from config.json (--dropout overrides). Progress goes to stderr; the last
stdout line (rank 0) is a JSON summary.
"""
import contextlib
import json
import math
import os
import random
import sys
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .data import PairStream, batches_in, count_pairs
from .model import BACKEND, P5
from .optim_extras import ItemRowScale, WeightAverage, item_rows
from .tokenizer import P5Tokenizer
from .train_args import STATE_FILE, parse_args

LOG_FILE = "hf-train-log.jsonl"


class Dist:
    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local = int(os.environ.get("LOCAL_RANK", "0"))
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.set_device(self.local)
        self.device = torch.device("cuda", self.local) if self.cuda else torch.device("cpu")
        if self.world > 1:
            dist.init_process_group("nccl" if self.cuda else "gloo")

    def sum(self, *values):
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def close(self):
        if self.world > 1:
            dist.destroy_process_group()


def log(d, msg):
    if d.rank == 0:
        sys.stderr.write(f"[p5rec.train] {msg}\n")
        sys.stderr.flush()


class _Logits(nn.Module):
    """The forward DDP wraps: p5rec's logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, whole_word_ids, decoder_input_ids):
        return self.model.p5rec_logits(input_ids, attention_mask, whole_word_ids, decoder_input_ids)


def check_reference(model, ref, device, d):
    """Compare logits with p5rec's engine (scripts/t5-reference.mjs) on the same weights."""
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for case in ref["cases"]:
            ids = torch.tensor([case["inputIds"]], device=device)
            out = model.p5rec_logits(ids, torch.ones_like(ids), torch.tensor([case["wholeWordIds"]], device=device), torch.tensor([case["decoderInputIds"]], device=device))[0].float().cpu()
            want = torch.tensor(case["logits"])
            diff = (out - want).abs().max().item()
            scale = want.abs().max().item()
            worst = max(worst, diff / max(scale, 1e-6))
            log(d, f"reference '{case['source'][:40]}…': max |Δlogit| {diff:.2e} (max |logit| {scale:.2f})")
    model.train()
    return worst


def main(argv=None):
    a = parse_args(argv)
    t_start = time.time()
    d = Dist()
    try:
        return run(a, d, t_start)
    finally:
        d.close()


def run(a, d, t_start):
    torch.manual_seed(a.seed + d.rank)
    random.seed(a.seed)
    state_path = os.path.join(a.out, STATE_FILE) if a.out else None
    state = None
    if a.resume:
        if not state_path or not os.path.exists(state_path):
            sys.exit(f"--resume: no {STATE_FILE} in {a.out}")
        state = torch.load(state_path, map_location="cpu")

    model = P5.from_p5rec(a.model, dropout=a.dropout)
    if model.initialised:
        log(d, f"{a.model}: no {model.initialised[0]} in the weights: initialised fresh")
    if state is not None:
        model.load_p5rec_state(state["model"], state_path)
    model.to(d.device)
    tok = P5Tokenizer.from_folder(a.model)
    cfg = model.config
    log(d, f"backend {BACKEND}, tokenizer {tok.backend}; {d.world} rank(s) on {torch.cuda.get_device_name(d.local) if d.cuda else 'cpu'}; {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")

    ref_err = None
    if a.reference:
        with open(a.reference) as f:
            ref_err = check_reference(model, json.load(f), d.device, d)
        log(d, f"reference check: worst relative logit difference {ref_err:.2e}")
        if ref_err > 1e-3:
            sys.exit(f"{a.reference}: PyTorch's logits differ from p5rec's by {ref_err:.2e} (relative): the layouts disagree")
    if a.epochs == 0:
        if d.rank == 0:
            print(json.dumps({"ok": True, "referenceRelErr": ref_err, "backend": BACKEND, "totalSeconds": round(time.time() - t_start, 1)}))
        return 0
    if not a.pairs or not a.out:
        sys.exit("--pairs and --out are required to train (--epochs > 0)")
    if not a.embedding_lr_scale > 0:
        sys.exit(f"--embedding-lr-scale must be > 0, got {a.embedding_lr_scale}")
    if a.item_lr_scale is not None and not a.item_lr_scale >= 0:
        sys.exit(f"--item-lr-scale must be >= 0, got {a.item_lr_scale}")
    if a.ema_decay is not None and not 0 < a.ema_decay < 1:
        sys.exit(f"--ema-decay must be in (0, 1), got {a.ema_decay}")
    if state is not None and (a.ema_decay is None) != (state.get("ema") is None):
        sys.exit(f"--resume: {state_path} keeps a weight average; resume with the --ema-decay it was started with" if a.ema_decay is None
                 else f"--resume: {state_path} has no weight average, but this run asks for --ema-decay (resume with the options it was started with)")
    G = a.global_batch or a.batch_size * d.world
    if G < d.world:
        sys.exit(f"--global-batch {G} is smaller than the {d.world} ranks")
    if state is not None and state["globalBatch"] != G:
        sys.exit(f"--resume: the run used --global-batch {state['globalBatch']}, not {G} (the batches and the schedule depend on it)")

    counts = {p: count_pairs(p) for p in a.pairs}
    per_epoch = [batches_in(counts[a.pairs[e % len(a.pairs)]], G, d.world) for e in range(a.epochs)]
    plan = {"total": sum(per_epoch)}
    if a.steps:
        plan["total"] = min(plan["total"], a.steps)
    if state is not None:
        plan["total"] = state["planTotal"]
    log(d, f"{sum(counts.values()):,} pairs in {len(a.pairs)} file(s); global batch {G} = {d.world} × ~{G // d.world}; {plan['total']} steps planned")

    # AdamW groups as p5rec's: the token table (own lr scale; decay divided by it so the scale
    # speeds up the Adam step only), the rest with decay, none on layer norms and biases.
    named = [(n, p) for n, p in model.named_parameters()]
    no_decay = lambda n: "layer_norm" in n or "bias" in n
    table = [p for n, p in named if n == "shared.weight"]
    if not table:
        sys.exit("no shared.weight parameter: cannot apply --embedding-lr-scale")
    groups = [
        {"params": table, "weight_decay": a.weight_decay / a.embedding_lr_scale, "lr_scale": a.embedding_lr_scale},
        {"params": [p for n, p in named if n != "shared.weight" and not no_decay(n)], "weight_decay": a.weight_decay, "lr_scale": 1.0},
        {"params": [p for n, p in named if n != "shared.weight" and no_decay(n)], "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=a.lr, betas=(0.9, 0.999), eps=a.adam_eps)
    rows = None
    if a.item_lr_scale is not None:
        try:
            rows = ItemRowScale(table[0], item_rows(a.model, tok.token_to_id), a.item_lr_scale, a.embedding_lr_scale, a.weight_decay)
        except ValueError as e:
            sys.exit(str(e))
        log(d, f"item rows: {len(rows.rows)} at lr scale {a.item_lr_scale} (the rest of the table at {a.embedding_lr_scale})")
    ema = WeightAverage(model, a.ema_decay, state.get("ema") if state is not None else None) if a.ema_decay is not None else None
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    net = nn.parallel.DistributedDataParallel(_Logits(model), device_ids=[d.local] if d.cuda else None) if d.world > 1 else _Logits(model)

    def lr_at(step):  # 1-based, p5rec's learningRate()
        total = plan["total"]
        warm = math.ceil(a.warmup * total)
        if warm > 0 and step <= warm:
            return a.lr * step / warm
        rest = total - warm
        return a.lr if rest <= 0 else a.lr * max(0, total - step + 1) / rest

    step = state["step"] if state else 0
    epoch, start = (state["epoch"], state["nextBatch"]) if state else (0, 0)
    if state is not None:
        random.setstate(state["pyRandom"])
        torch.set_rng_state(state["torchRandom"][d.rank % len(state["torchRandom"])])
        log(d, f"resuming at step {step}, epoch {epoch + 1}, batch {start}")
    losses, tokens, bad_steps, stopped = [], 0.0, 0, None
    amp = d.cuda and not a.no_amp
    if d.cuda and not amp:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    workers = a.workers if a.workers >= 0 else (2 if d.cuda else 0)
    pad = cfg.pad_token_id
    if d.rank == 0:
        os.makedirs(a.out, exist_ok=True)
        logf = open(os.path.join(a.out, LOG_FILE), "a" if state else "w")

    saved = {"step": None, "files": []}

    def checkpoint(ep, nxt, final=False):
        if ep < a.epochs and nxt >= per_epoch[ep]:
            ep, nxt = ep + 1, 0
        rng = [torch.get_rng_state()]
        if d.world > 1:
            rng = [torch.empty_like(rng[0]) for _ in range(d.world)]
            dist.all_gather(rng, torch.get_rng_state().to(d.device) if d.cuda else torch.get_rng_state())
            rng = [r.cpu() for r in rng]
        if d.rank == 0:
            with ema.swapped_in() if ema else contextlib.nullcontext():  # the folder holds the average, the state both
                files = model.save_p5rec(a.out, source=a.model, dtype=a.dtype, shard_mb=a.shard_mb)
            st = {"model": {k: v.detach().float().cpu() for k, v in model.p5rec_state().items()}, "ema": ema.state() if ema else None, "optimizer": opt.state_dict(), "step": step, "epoch": ep,
                  "nextBatch": nxt, "planTotal": plan["total"], "globalBatch": G, "pairs": [os.path.basename(p) for p in a.pairs],
                  "pyRandom": random.getstate(), "torchRandom": rng, "final": final}
            torch.save(st, state_path + ".tmp")
            os.replace(state_path + ".tmp", state_path)
            logf.flush()
            saved["files"] = files
        saved["step"] = step
        d.barrier()

    t_train = time.time()
    last_log, t50 = t_train, None
    done = step >= plan["total"]
    while not done and epoch < a.epochs:
        path = a.pairs[epoch % len(a.pairs)]
        stream = PairStream(path, tok, G, d.rank, d.world, a.seed, epoch, start, a.bucket, a.max_source, a.max_target, model.ww_rows, cfg.decoder_start_token_id)
        loader = DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=d.cuda)
        for batch in loader:
            b = int(batch.pop("index"))
            batch = {k: v.to(d.device, non_blocking=True) for k, v in batch.items()}
            labels = batch["labels"].masked_fill(batch["labels"] == pad, -100) if pad != cfg.eos_token_id else batch["labels"]
            step += 1
            for g in opt.param_groups:
                g["lr"] = lr_at(step) * g["lr_scale"]
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
                logits = net(batch["input_ids"], batch["attention_mask"], batch["whole_word_ids"], batch["decoder_input_ids"])
            ce = nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum")
            n_tgt = int((labels != -100).sum())
            n_tok = n_tgt + int(batch["attention_mask"].sum())
            ce_all, n_all = d.sum(ce.item(), n_tgt)
            loss_value = ce_all / max(n_all, 1)
            opt.zero_grad(set_to_none=True)
            if not math.isfinite(loss_value):  # the same on every rank: all skip together
                bad_steps += 1
                if bad_steps >= 10:
                    log(d, f"loss is not finite for {bad_steps} steps in a row (at step {step}): stopping here")
                    stopped = f"non-finite loss at step {step}"
                    done = True
                    break
                continue
            bad_steps = 0
            # DDP averages gradients over ranks: × world / global count = mean over the global batch's tokens.
            (ce * (d.world / max(n_all, 1))).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            if rows:
                rows.before_step()
            opt.step()
            if rows:
                rows.after_step(lr_at(step))
            if ema:
                ema.update()
            tokens += n_tok
            losses.append(loss_value)
            if d.rank == 0:
                logf.write(json.dumps({"step": step, "loss": loss_value, "lr": lr_at(step), "epoch": epoch + 1, "batch": b}) + "\n")
            now = time.time()
            if step == 50:
                t50 = now
            if step == 250 and a.max_seconds > 0 and t50:
                rate = 200 / (now - t50)
                fits = int(step + rate * (a.max_seconds - (now - t_start)))
                if fits < plan["total"]:
                    log(d, f"--max-seconds {a.max_seconds:.0f}: {plan['total']} planned steps do not fit at {rate:.1f} step/s; training {fits}")
                    plan["total"] = fits
            if now - last_log > 15:
                last_log = now
                rate = len(losses) / (now - t_train)
                log(d, f"train | {step}/{plan['total']} steps | epoch {epoch + 1} | {rate:.2f} step/s | ETA {(plan['total'] - step) / rate:.0f}s | loss {loss_value:.4f} | lr {lr_at(step):.2e}")
            if step >= plan["total"]:
                done = True
            elif a.stop_after and step >= a.stop_after:
                stopped = f"--stop-after {a.stop_after}"
                done = True
            if done or (a.save_every and step % a.save_every == 0):
                checkpoint(epoch, b + 1, final=step >= plan["total"])
            if done:
                break
        if not done:
            epoch, start = epoch + 1, 0
    if d.cuda:
        torch.cuda.synchronize()
    train_seconds = time.time() - t_train
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        sys.exit(f"weights are not finite after step {step}; nothing written. Try a lower --lr or --no-amp")
    if saved["step"] != step:  # e.g. stopped on a non-finite loss between saves
        checkpoint(epoch, start, final=step >= plan["total"])
    (tokens_all,) = d.sum(tokens)
    if d.rank != 0:
        return 0
    logf.close()
    fit = {
        "trainer": f"p5rec.train ({BACKEND})",
        "device": torch.cuda.get_device_name(d.local) if d.cuda else "cpu",
        "ranks": d.world,
        "torch": torch.__version__,
        "steps": step,
        "globalBatch": G,
        "lr": a.lr,
        "embeddingLrScale": a.embedding_lr_scale,
        "itemLrScale": a.item_lr_scale,
        "emaDecay": a.ema_decay,
        "adamEps": a.adam_eps,
        "amp": "bf16" if amp else "fp32",
        "stoppedEarly": stopped,
        "seconds": round(train_seconds, 1),
        "tokensPerSec": round(tokens_all / max(train_seconds, 1e-9)),
        "tokensPerSecPerRank": round(tokens_all / max(train_seconds, 1e-9) / d.world),
        "finalLoss": losses[-1] if losses else None,
        "pairFiles": len(a.pairs),
        "referenceRelErr": ref_err,
        "peakGpuMB": round(torch.cuda.max_memory_allocated() / 2**20) if d.cuda else None,
    }
    card_path = os.path.join(a.out, "model.json")
    if os.path.exists(card_path):
        with open(card_path) as f:
            card = json.load(f)
        card["fit"] = fit
        card.setdefault("config", {}).setdefault("training", {})["hf"] = {"epochs": a.epochs, "lr": a.lr, "globalBatch": G, "ranks": d.world, "pairs": [os.path.basename(p) for p in a.pairs]}
        with open(card_path + ".tmp", "w") as f:
            json.dump(card, f, indent=2)
        os.replace(card_path + ".tmp", card_path)
    print(json.dumps({"ok": True, "out": a.out, "files": saved["files"], "fit": fit, "losses": losses, "totalSeconds": round(time.time() - t_start, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Train a p5rec P5 model on a GPU with PyTorch + HF transformers.

The CPU engine is the default; this is the "bring your own GPU" path the
checkpoint format exists for. p5rec writes the corpus (`p5rec prompts export`)
and a model folder (config.json + tokenizer.json + initial weights, from
`p5rec train ... --steps 1`); this script trains that model on the exported
pairs and writes the weights back in the folder layout p5rec loads (HF T5
names + P5's `encoder.whole_word_embeddings.weight`), so `p5rec eval` decodes
and scores it exactly like a model trained on the CPU.

  python3 scripts/hf_train_p5.py --model BASE --pairs e0.jsonl.gz e1.jsonl.gz \
      --out TRAINED --epochs 10 --lr 1e-3 --batch-size 256 [--max-seconds 400] \
      [--reference ref.json] [--dtype f16] [--shard-mb 15]

What it mirrors from p5rec (src/p5/corpus.ts, src/tokenizer/whole-word.ts,
src/train): pieces from the same tokenizer.json, sources clipped to
--max-source tokens with `</s>` kept last, whole-word indices (a word starts
at each piece beginning with "▁", counted from 1; `</s>`/padding 0; clipped to
511), targets clipped to 64; AdamW (weight decay 0.01, none on layer norms),
epsilon 1e-6 (--adam-eps), linear warmup over 5% of the steps then linear decay, gradient clipping at 1.0,
dropout from config.json. Batches are length-bucketed.

--pairs files are cycled when --epochs exceeds their count (each exported
epoch has its own templates and negatives). --max-seconds caps training: after
50 steps the step rate is measured and, if the planned steps would not fit,
the plan (and so the learning-rate schedule) is shortened to what fits.
--reference checks, before training, that PyTorch computes the same logits
as p5rec's engine for the initial weights (file from scripts/t5-reference.mjs).
Progress (rate, ETA) goes to stderr; the last stdout line is a JSON summary.
"""
import argparse
import gzip
import json
import lzma
import math
import os
import random
import shutil
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from transformers import T5Config, T5ForConditionalGeneration

WORD_MARKER = "\u2581"
P5_EXTRA = "encoder.whole_word_embeddings.weight"
# HF's duplicates of the tied embedding: p5rec writes only `shared.weight`.
TIED_COPIES = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}


def log(msg):
    sys.stderr.write(f"[hf_train_p5] {msg}\n")
    sys.stderr.flush()


def read_pairs(path):
    opener = gzip.open if path.endswith(".gz") else lzma.open if path.endswith(".xz") else open
    src, tgt = [], []
    with opener(path, "rt", encoding="utf8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                s, t = (d[0], d[1]) if isinstance(d, list) else (d["source"], d["target"])
            except (ValueError, KeyError, IndexError, TypeError) as e:
                sys.exit(f"{path}:{n}: not a pair line ({e}); expected {{\"source\", \"target\"}} or [source, target]")
            src.append(s)
            tgt.append(t)
    return src, tgt


def whole_word_ids(pieces, ids, eos, pad, max_index, id_tokens=frozenset()):
    # A word starts at a "▁" piece or at an id token (item_548: an added, non-special token), as in p5rec.
    out, word = [], 0
    for p, i in zip(pieces, ids):
        if i == eos or i == pad:
            out.append(0)
            continue
        if p.startswith(WORD_MARKER) or i in id_tokens:
            word += 1
        out.append(min(word, max_index))
    return out


def id_token_ids(tok):
    return frozenset(i for i, t in tok.get_added_tokens_decoder().items() if not t.special)


def encode(tok, texts, max_len, eos, pad, ww_rows):
    encs = tok.encode_batch(texts, add_special_tokens=False)
    id_tokens = id_token_ids(tok) if ww_rows else frozenset()
    ids_out, ww_out = [], []
    for e in encs:
        ids = list(e.ids)[: max_len - 1] + [eos]
        pieces = list(e.tokens)[: max_len - 1] + ["</s>"]
        ids_out.append(ids)
        ww_out.append(whole_word_ids(pieces, ids, eos, pad, ww_rows - 1, id_tokens) if ww_rows else None)
    return ids_out, ww_out


class P5T5(torch.nn.Module):
    """HF's T5 stacks, P5's whole-word embeddings added to the encoder input,
    and the output layer written out (tied: h·d^-0.5 @ sharedᵀ, as p5rec and
    HF T5 compute it) so the loss does not depend on a transformers version's
    head wiring."""

    def __init__(self, cfg, ww_rows):
        super().__init__()
        self.t5 = T5ForConditionalGeneration(cfg)
        if cfg.tie_word_embeddings:  # one table, whatever a transformers version ties by itself
            self.t5.encoder.embed_tokens = self.t5.shared
            self.t5.decoder.embed_tokens = self.t5.shared
        self.ww = torch.nn.Embedding(ww_rows, cfg.d_model) if ww_rows else None

    def logits(self, input_ids, attention_mask, ww_ids, decoder_input_ids):
        emb = self.t5.shared(input_ids)
        if self.ww is not None:
            emb = emb + self.ww(ww_ids)
        enc = self.t5.encoder(inputs_embeds=emb, attention_mask=attention_mask).last_hidden_state
        dec = self.t5.decoder(input_ids=decoder_input_ids, encoder_hidden_states=enc, encoder_attention_mask=attention_mask, use_cache=False).last_hidden_state
        if self.t5.config.tie_word_embeddings:
            return (dec * self.t5.config.d_model ** -0.5) @ self.t5.shared.weight.t()
        return self.t5.lm_head(dec)

    def shift_right(self, labels):
        dec = torch.full_like(labels, self.t5.config.pad_token_id)
        dec[:, 0] = self.t5.config.decoder_start_token_id
        dec[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, self.t5.config.pad_token_id)
        return dec

    def loss(self, input_ids, attention_mask, ww_ids, labels):
        logits = self.logits(input_ids, attention_mask, ww_ids, self.shift_right(labels))
        return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    def p5rec_state(self):
        sd = {k: v for k, v in self.t5.state_dict().items() if k not in TIED_COPIES or not self.t5.config.tie_word_embeddings}
        if self.ww is not None:
            sd[P5_EXTRA] = self.ww.weight
        return sd

    def load_p5rec_state(self, sd):
        if P5_EXTRA in sd and self.ww is not None:
            self.ww.weight.data.copy_(sd.pop(P5_EXTRA))
        sd = dict(sd)
        if self.t5.config.tie_word_embeddings and "shared.weight" in sd:
            for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
                sd.setdefault(k, sd["shared.weight"])
        missing, unexpected = self.t5.load_state_dict(sd, strict=False)
        missing = [m for m in missing if m not in TIED_COPIES and "EncDecAttention.relative_attention_bias" not in m]
        if missing or unexpected:
            sys.exit(f"weights do not match config.json: missing {missing[:3]}, unexpected {unexpected[:3]}")


def hf_config(raw):
    fields = {k: v for k, v in raw.items() if k not in ("whole_word_embeddings", "architectures", "dense_act_fn", "is_gated_act", "model_type")}
    for k in ("initializer_factor", "dropout_rate", "layer_norm_epsilon"):  # strict configs want floats, JSON wrote 1
        if k in fields:
            fields[k] = float(fields[k])
    return T5Config(**fields)


def load_weights(folder):
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return load_file(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        return None
    files = sorted(set(json.load(open(index))["weight_map"].values()))
    sd = {}
    for f in files:
        sd.update(load_file(os.path.join(folder, f)))
    return sd


def pad_batch(rows, pad, device):
    n = max(len(r) for r in rows)
    out = np.full((len(rows), n), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out).to(device, non_blocking=True)


def check_reference(model, ref, device):
    """Compare logits with p5rec's engine on the same weights and inputs."""
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for case in ref["cases"]:
            ids = torch.tensor([case["inputIds"]], device=device)
            ww = torch.tensor([case["wholeWordIds"]], device=device)
            dec = torch.tensor([case["decoderInputIds"]], device=device)
            out = model.logits(ids, torch.ones_like(ids), ww, dec)[0].float().cpu()
            want = torch.tensor(case["logits"])
            diff = (out - want).abs().max().item()
            scale = want.abs().max().item()
            worst = max(worst, diff / max(scale, 1e-6))
            log(f"reference '{case['source'][:40]}…': max |Δlogit| {diff:.2e} (max |logit| {scale:.2f})")
    model.train()
    return worst


def save_sharded(sd, out_dir, dtype, shard_mb):
    conv = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    tensors = {k: v.detach().to("cpu", conv).contiguous() for k, v in sd.items()}
    limit = shard_mb * 1024 * 1024
    shards, cur, size = [], {}, 0
    for k in sorted(tensors):
        b = tensors[k].numel() * tensors[k].element_size()
        if cur and size + b > limit:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = tensors[k]
        size += b
    if cur:
        shards.append(cur)
    for f in os.listdir(out_dir):
        if f.startswith("model") and (f.endswith(".safetensors") or f.endswith(".index.json")):
            os.remove(os.path.join(out_dir, f))
    if len(shards) == 1:
        save_file(shards[0], os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return ["model.safetensors"]
    names, weight_map, total = [], {}, 0
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        tmp = os.path.join(out_dir, f".{name}.tmp")
        save_file(shard, tmp, metadata={"format": "pt"})
        os.replace(tmp, os.path.join(out_dir, name))
        names.append(name)
        for k, v in shard.items():
            weight_map[k] = name
            total += v.numel() * v.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    tmp = os.path.join(out_dir, ".index.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "model.safetensors.index.json"))
    return names + ["model.safetensors.index.json"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="p5rec model folder: config.json, tokenizer.json, optional initial weights")
    ap.add_argument("--pairs", nargs="*", default=[], help="exported pairs (JSONL, optionally .gz or .xz), one file per epoch")
    ap.add_argument("--out", help="folder to write (required unless --epochs 0)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-source", type=int, default=512)
    ap.add_argument("--max-target", type=int, default=64)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--adam-eps", type=float, default=1e-6, help="AdamW epsilon (p5rec's and P5's default 1e-6)")
    ap.add_argument("--embedding-lr-scale", type=float, default=1.0, help="learning-rate multiplier for shared.weight (p5rec train --embedding-lr-scale)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=0, help="cap on training time (0 = none); the schedule is shortened to fit")
    ap.add_argument("--reference", help="logits from scripts/t5-reference.mjs to check against before training")
    ap.add_argument("--dtype", default="f16", choices=["f32", "f16", "bf16"], help="dtype of the saved weights")
    ap.add_argument("--shard-mb", type=float, default=0, help="split the weights into files of at most this size (0 = one file)")
    ap.add_argument("--no-amp", action="store_true", help="train in float32 (default on a GPU: bfloat16 autocast)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    t_start = time.time()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    raw = json.load(open(os.path.join(a.model, "config.json")))
    ww_rows = int(raw.get("whole_word_embeddings", 0))
    cfg = hf_config(raw)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    eos, pad = cfg.eos_token_id, cfg.pad_token_id

    model = P5T5(cfg, ww_rows)
    init = load_weights(a.model)
    if init is not None:
        model.load_p5rec_state(init)
        log(f"initial weights from {a.model} ({len(init)} tensors)")
    model.to(device)
    params = sum(p.numel() for p in model.parameters())
    log(f"device {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}; {params / 1e6:.1f}M parameters")

    ref_err = None
    if a.reference:
        ref_err = check_reference(model, json.load(open(a.reference)), device)
        log(f"reference check: worst relative logit difference {ref_err:.2e}")
        if ref_err > 1e-3:
            sys.exit(f"{a.reference}: PyTorch's logits differ from p5rec's by {ref_err:.2e} (relative): the layouts disagree")

    if a.epochs == 0:
        print(json.dumps({"ok": True, "referenceRelErr": ref_err, "totalSeconds": round(time.time() - t_start, 1)}))
        return
    if not a.pairs or not a.out:
        sys.exit("--pairs and --out are required to train (--epochs > 0)")
    if not a.embedding_lr_scale > 0:
        sys.exit(f"--embedding-lr-scale must be > 0, got {a.embedding_lr_scale}")

    # Tokenize every pairs file once.
    t0 = time.time()
    data = []
    for path in a.pairs:
        s, t = read_pairs(path)
        si, sw = encode(tok, s, a.max_source, eos, pad, ww_rows)
        ti, _ = encode(tok, t, a.max_target, eos, pad, 0)
        data.append(list(zip(si, sw, ti)))
        log(f"{path}: {len(s):,} pairs")
    log(f"tokenized in {time.time() - t0:.1f}s")

    def batches(epoch):
        rows = data[epoch % len(data)]
        rng = random.Random(a.seed * 1000 + epoch)
        order = list(range(len(rows)))
        rng.shuffle(order)
        mega = a.batch_size * 64
        out = []
        for m in range(0, len(order), mega):
            chunk = sorted(order[m : m + mega], key=lambda i: len(rows[i][0]))
            out += [chunk[i : i + a.batch_size] for i in range(0, len(chunk), a.batch_size)]
        rng.shuffle(out)
        return rows, out

    per_epoch = [math.ceil(len(data[e % len(data)]) / a.batch_size) for e in range(a.epochs)]
    plan = {"total": sum(per_epoch)}
    # Three groups, as p5rec's AdamW: the token table (its own learning-rate
    # scale: rare id rows learn slowly at the base rate), the rest with weight
    # decay, and no decay on layer norms and biases (relative_attention_bias
    # included, as p5rec's defaultNoDecay). torch's AdamW decays by
    # lr·weight_decay per group: the table's weight_decay is divided by its
    # scale so that, as in p5rec, the scale speeds up the Adam step only.
    named = list(model.named_parameters())
    no_decay_name = lambda n: "layer_norm" in n or "bias" in n
    table = [p for n, p in named if n == "t5.shared.weight"]
    decay = [p for n, p in named if not no_decay_name(n) and n != "t5.shared.weight"]
    no_decay = [p for n, p in named if no_decay_name(n) and n != "t5.shared.weight"]
    groups = [
        {"params": table, "weight_decay": a.weight_decay / a.embedding_lr_scale, "lr_scale": a.embedding_lr_scale},
        {"params": decay, "weight_decay": a.weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    if not table:
        sys.exit("no t5.shared.weight parameter: cannot apply --embedding-lr-scale")
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=a.lr, betas=(0.9, 0.999), eps=a.adam_eps)

    def lr_at(step):  # 1-based, p5rec's learningRate()
        total = plan["total"]
        warm = math.ceil(a.warmup * total)
        if warm > 0 and step <= warm:
            return a.lr * step / warm
        rest = total - warm
        return a.lr if rest <= 0 else a.lr * max(0, total - step + 1) / rest

    step, tokens, loss, bad_steps = 0, 0, None, 0
    t_train = time.time()
    last_log = t_train
    amp = device == "cuda" and not a.no_amp
    if device == "cuda" and not amp:
        # float32 storage; TF32 tensor-core products (10-bit mantissa, float32 range).
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    done, stopped = False, None
    for epoch in range(a.epochs):
        rows, plan_batches = batches(epoch)
        for b in plan_batches:
            if step >= plan["total"]:
                done = True
                break
            src = pad_batch([rows[i][0] for i in b], pad, device)
            ww = pad_batch([rows[i][1] for i in b], 0, device)
            labels = pad_batch([rows[i][2] for i in b], -100, device)
            mask = (src != pad).long()
            step += 1
            for g in opt.param_groups:
                g["lr"] = lr_at(step) * g["lr_scale"]
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
                loss = model.loss(src, mask, ww, labels)
            opt.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                # A non-finite loss would poison the weights: skip the step, and
                # stop if it keeps happening.
                bad_steps += 1
                if bad_steps >= 10:
                    # Skipped steps left the weights as they were: keep them if finite.
                    log(f"loss is not finite for {bad_steps} steps in a row (at step {step}): stopping here")
                    stopped = f"non-finite loss at step {step}"
                    done = True
                    break
                continue
            bad_steps = 0
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            tokens += int(mask.sum()) + int((labels != -100).sum())
            now = time.time()
            if step == 50:
                t50 = now  # the first steps include CUDA start-up: rate from the steady part
            if step == 250 and a.max_seconds > 0:
                rate = 200 / (now - t50)
                fits = int(step + rate * (a.max_seconds - (now - t_start)))
                if fits < plan["total"]:
                    log(f"--max-seconds {a.max_seconds:.0f}: {plan['total']} planned steps do not fit at {rate:.1f} step/s; training {fits}")
                    plan["total"] = fits
            if now - last_log > 15:
                last_log = now
                rate = step / (now - t_train)
                eta = (plan["total"] - step) / rate
                log(f"train | {step}/{plan['total']} steps ({100 * step / plan['total']:.1f}%) | epoch {epoch + 1} | {rate:.1f} step/s | {tokens / (now - t_train):,.0f} tok/s | ETA {eta:.0f}s | loss {loss.item():.4f} | lr {lr_at(step):.2e}")
        if done:
            break
    train_seconds = time.time() - t_train
    if device == "cuda":
        torch.cuda.synchronize()

    if not all(torch.isfinite(p).all() for p in model.parameters()):
        sys.exit(f"weights are not finite after step {step}; nothing written. Try a lower --lr or --no-amp")
    os.makedirs(a.out, exist_ok=True)
    for f in ("config.json", "tokenizer.json", "p5.json", "model.json"):
        if os.path.exists(os.path.join(a.model, f)) and os.path.abspath(a.model) != os.path.abspath(a.out):
            shutil.copyfile(os.path.join(a.model, f), os.path.join(a.out, f))
    files = save_sharded(model.p5rec_state(), a.out, a.dtype, a.shard_mb or 1e9)
    epochs_done = 0.0
    left = step
    for n in per_epoch:
        if left <= 0:
            break
        epochs_done += min(1.0, left / n)
        left -= n
    fit = {
        "trainer": "hf-transformers",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "steps": step,
        "epochs": round(epochs_done, 3),
        "batchSize": a.batch_size,
        "lr": a.lr,
        "embeddingLrScale": a.embedding_lr_scale,
        "adamEps": a.adam_eps,
        "amp": "bf16" if amp else "fp32",
        "stoppedEarly": stopped,
        "seconds": round(train_seconds, 1),
        "tokensPerSec": round(tokens / max(train_seconds, 1e-9)),
        "finalLoss": loss.item() if step else None,
        "pairFiles": len(a.pairs),
        "referenceRelErr": ref_err,
        "peakGpuMB": round(torch.cuda.max_memory_allocated() / 2**20) if device == "cuda" else None,
    }
    card_path = os.path.join(a.out, "model.json")
    if os.path.exists(card_path):
        card = json.load(open(card_path))
        card["fit"] = fit
        card.setdefault("config", {}).setdefault("training", {})["hf"] = {"epochs": a.epochs, "lr": a.lr, "batchSize": a.batch_size, "pairs": [os.path.basename(p) for p in a.pairs]}
        with open(card_path + ".tmp", "w") as f:
            json.dump(card, f, indent=2)
        os.replace(card_path + ".tmp", card_path)
    print(json.dumps({"ok": True, "out": a.out, "files": files, "fit": fit, "totalSeconds": round(time.time() - t_start, 1)}))


if __name__ == "__main__":
    main()

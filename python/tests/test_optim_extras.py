"""--item-lr-scale and --ema-decay in the PyTorch trainer, as in p5rec's: the item rows step at
their own rate (decay at the base rate), and the folder holds the weight average."""
import json
import os
import shutil
import subprocess

import torch

from conftest import ENV, PY, ROOT, last_json, sh
from p5rec.optim_extras import item_rows
from p5rec.st import load_file
from p5rec.tokenizer import P5Tokenizer

# 3 steps of 16 pairs; the table at 10× the base rate, as the quickstart's recipe.
COMMON = ["--epochs", "1", "--steps", "3", "--global-batch", "16", "--bucket", "2", "--dtype", "f32", "--lr", "3e-3", "--embedding-lr-scale", "10"]


def args(work, out, extra):
    return PY + ["-m", "p5rec.train", "--model", work["base"], "--pairs", work["pairs"], "--out", out, *COMMON, *extra]


def train(work, name, *extra):
    out = os.path.join(work["dir"], name)
    shutil.rmtree(out, ignore_errors=True)
    return out, last_json(sh(args(work, out, extra), timeout=600).stdout)


def weights(folder):
    return load_file(os.path.join(folder, "model.safetensors"))


def state(folder):
    return torch.load(os.path.join(folder, "hf-train-state.pt"))


def max_diff(a, b):
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_item_rows_are_the_id_tokens(work):
    tok = P5Tokenizer.from_folder(work["base"])
    with open(os.path.join(work["base"], "ids.json")) as f:
        ids = json.load(f)
    rows = item_rows(work["base"], tok.token_to_id)
    assert len(rows) == len(ids["items"]) > 0
    assert rows == sorted(tok.token_to_id[t.split(" ")[-1]] for t in ids["items"])


def test_item_rows_step_at_their_own_rate(work):
    base = weights(work["base"])
    plain, _ = train(work, "rows-plain")
    same, r = train(work, "rows-same", "--item-lr-scale", "10")
    frozen, _ = train(work, "rows-frozen", "--item-lr-scale", "0")
    assert r["fit"]["itemLrScale"] == 10
    # The table's own scale for the item rows is the plain run.
    assert max_diff(weights(plain), weights(same)) < 1e-6
    # Scale 0: the item rows only decay (at the base rate, as p5rec's AdamW), by the logged lr of each step.
    with open(os.path.join(frozen, "hf-train-log.jsonl")) as f:
        lrs = [json.loads(l)["lr"] for l in f]
    keep = 1.0
    for lr in lrs:
        keep *= 1 - lr * 0.01
    rows = item_rows(work["base"], P5Tokenizer.from_folder(work["base"]).token_to_id)
    w0, w = base["shared.weight"].float(), weights(frozen)["shared.weight"]
    assert len(lrs) == 3
    assert (w[rows] - w0[rows] * keep).abs().max().item() < 1e-6
    other = [i for i in range(w.shape[0]) if i not in set(rows)]
    assert (w[other] - w0[other]).abs().max().item() > 1e-4  # the rest of the table trained
    assert (weights(plain)["shared.weight"][rows] - w0[rows]).abs().max().item() > 1e-4


def test_the_folder_holds_the_weight_average_and_resume_keeps_it(work):
    full, r = train(work, "ema-full", "--ema-decay", "0.9")
    assert r["fit"]["emaDecay"] == 0.9
    one, _ = train(work, "ema-1", "--ema-decay", "0.9", "--stop-after", "1")
    two, _ = train(work, "ema-2", "--ema-decay", "0.9", "--stop-after", "2")
    raw = [state(one)["model"], state(two)["model"], state(full)["model"]]
    avg = {k: v.float().clone() for k, v in weights(work["base"]).items()}
    for n, w in enumerate(raw, 1):
        d = min(0.9, (1 + n) / (10 + n))
        for k in avg:
            avg[k] += (1 - d) * (w[k].float() - avg[k])
    got = weights(full)
    print(f"\nfolder vs hand-computed average: max |Δ| {max_diff(avg, got):.2e}; vs the last step's weights: {max_diff(raw[2], got):.2e}")
    assert max_diff(avg, got) < 1e-5
    assert max_diff(raw[2], got) > 1e-4  # the average, not the last step
    # Interrupted after 2 steps and resumed: the same average.
    resumed = os.path.join(work["dir"], "ema-resumed")
    shutil.rmtree(resumed, ignore_errors=True)
    shutil.copytree(two, resumed)
    sh(args(work, resumed, ["--ema-decay", "0.9", "--resume"]), timeout=600)
    assert max_diff(got, weights(resumed)) < 1e-5
    # A resume that drops the average is refused, naming the flag.
    bad = subprocess.run(args(work, two, ["--resume"]), capture_output=True, text=True, env=ENV, cwd=os.path.join(ROOT, "python"), timeout=600)
    assert bad.returncode != 0 and "--ema-decay" in bad.stderr

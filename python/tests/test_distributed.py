"""The trainer: 2 gloo ranks equal 1 process on the same global batch; resume; the result loads in `p5rec eval`."""
import json
import os
import sys

import torch

from conftest import CLI, PY, last_json, sh
from p5rec.data import batches_in, plan_epoch
from p5rec.st import load_file

COMMON = ["--epochs", "1", "--global-batch", "16", "--bucket", "2", "--dtype", "f32", "--lr", "3e-3"]


def train(work, out, ranks=1, extra=()):
    args = ["p5rec.train", "--model", work["base"], "--pairs", work["pairs"], "--out", out, *COMMON, *extra]
    cmd = PY + (["-m", "p5rec.launch", "--nproc", str(ranks)] + args if ranks > 1 else ["-m"] + args)
    return last_json(sh(cmd, timeout=600).stdout)


def log_losses(out):
    with open(os.path.join(out, "hf-train-log.jsonl")) as f:
        return [json.loads(l)["loss"] for l in f]


def test_batches_do_not_depend_on_ranks(work):
    one = [(b, [s for s, _ in p]) for b, p in plan_epoch(work["pairs"], 16, 0, 0, 2, world=1)]
    two = [(b, [s for s, _ in p]) for b, p in plan_epoch(work["pairs"], 16, 0, 0, 2, world=2)]
    assert one == two and len(one) == 6 == batches_in(96, 16, 2)
    assert [b for b, _ in plan_epoch(work["pairs"], 16, 0, 1, 2)] == list(range(6))
    assert one != [(b, [s for s, _ in p]) for b, p in plan_epoch(work["pairs"], 16, 0, 1, 2)]  # another epoch, another order
    assert batches_in(97, 16, 2) == 6 and batches_in(98, 16, 2) == 7


def test_two_ranks_equal_one(work):
    o1, o2 = os.path.join(work["dir"], "run1"), os.path.join(work["dir"], "run2")
    r1 = train(work, o1, 1)
    r2 = train(work, o2, 2)
    l1, l2 = r1["losses"], r2["losses"]
    print("\n1 process  (global batch 16):       " + " ".join(f"{x:.6f}" for x in l1))
    print("2 processes (gloo, 2 × 8 per step):  " + " ".join(f"{x:.6f}" for x in l2))
    diff = max(abs(a - b) for a, b in zip(l1, l2))
    w1, w2 = load_file(os.path.join(o1, "model.safetensors")), load_file(os.path.join(o2, "model.safetensors"))
    wdiff = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    print(f"max |Δloss| {diff:.2e}; final weights max |Δ| {wdiff:.2e}; tok/s {r1['fit']['tokensPerSec']} (1) vs {r2['fit']['tokensPerSec']} (2)")
    assert len(l1) == len(l2) == 6 and r2["fit"]["ranks"] == 2
    assert l1[-1] < l1[0]  # it learns
    assert diff < 1e-4 and wdiff < 1e-4


def test_resume_continues_the_same_run(work):
    full = os.path.join(work["dir"], "run1")
    if not os.path.exists(os.path.join(full, "hf-train-log.jsonl")):
        train(work, full, 1)
    out = os.path.join(work["dir"], "run-resumed")
    first = train(work, out, 1, ["--stop-after", "3"])
    assert first["fit"]["steps"] == 3 and first["fit"]["stoppedEarly"] == "--stop-after 3"
    state = torch.load(os.path.join(out, "hf-train-state.pt"))
    assert (state["step"], state["epoch"], state["nextBatch"], state["planTotal"]) == (3, 0, 3, 6)
    second = train(work, out, 2, ["--resume"])  # on 2 ranks: the batches do not depend on it
    a, b = log_losses(full), log_losses(out)
    print("\nuninterrupted:        " + " ".join(f"{x:.6f}" for x in a))
    print("3 steps + --resume:   " + " ".join(f"{x:.6f}" for x in b))
    assert second["fit"]["steps"] == 6 and len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4


def test_result_loads_in_p5rec_eval(work):
    out = os.path.join(work["dir"], "run2")
    if not os.path.exists(os.path.join(out, "model.safetensors")):
        train(work, out, 2)
    r = sh(CLI + ["eval", work["ds"], "--model", out, "--task", "sequential", "--users", "20", "--beams", "5", "--json", "--quiet"], timeout=300)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\np5rec eval on the 2-rank model: count {res['count']}, {json.dumps(res['metrics'])}; fit.ranks {res['fit']['ranks']}")
    assert res["ok"] and res["count"] == 20 and res["fit"]["ranks"] == 2
    assert set(res["metrics"]) >= {"HR@10", "NDCG@10"}

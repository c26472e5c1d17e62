"""Shared fixtures: a tiny p5rec model and exported pairs made with the CLI
(needs `npm run build`; scripts/test-python.sh does it). Set P5REC_TEST_WORK to
a folder to keep (and reuse) them between runs."""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = [shutil.which("node") or "node", os.path.join(ROOT, "bin", "p5rec.js")]
REVIEWS = os.path.join(ROOT, "data", "musical-instruments", "reviews_Musical_Instruments_5.json.gz")
PY = [sys.executable]
ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=os.path.join(ROOT, "python"), **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def work():
    keep = os.environ.get("P5REC_TEST_WORK")
    d = keep or tempfile.mkdtemp(prefix="p5rec-py-")
    os.makedirs(d, exist_ok=True)
    ds, base, pairs = os.path.join(d, "ds"), os.path.join(d, "base"), os.path.join(d, "pairs.jsonl.gz")
    if not os.path.exists(os.path.join(ds, "manifest.json")):
        sh(CLI + ["data", "import", "amazon", "--reviews", REVIEWS, "--out", ds, "--force"])
    if not os.path.exists(os.path.join(base, "model.safetensors")):
        # dropout 0: the 1-rank / 2-rank comparison needs no random masks; independent ids: id tokens start whole words.
        sh(CLI + ["train", ds, "--out", base, "--config", '{"preset":"tiny","dropout_rate":0}', "--tasks", "sequential,direct",
                  "--item-ids", "independent", "--epochs", "1", "--steps", "2", "--negatives", "9", "--vocab", "600", "--force"])
    if not os.path.exists(pairs):
        raw = os.path.join(d, "pairs.jsonl")
        sh(CLI + ["prompts", "export", ds, "--tasks", "sequential,direct", "--ids-from", base, "--negatives", "9", "--limit", "96", "--out", raw])
        with open(raw, "rb") as f, gzip.open(pairs, "wb") as g:
            g.write(f.read())
    yield {"dir": d, "ds": ds, "base": base, "pairs": pairs}
    if not keep:
        shutil.rmtree(d, ignore_errors=True)

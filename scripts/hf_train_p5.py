#!/usr/bin/env python3
"""Train a p5rec P5 model with PyTorch (+ HF transformers when installed).

The trainer now lives in the Python package python/p5rec (python/p5rec/train.py):
this file only runs it, so the commands in docs/p5.md keep working:

  python3 scripts/hf_train_p5.py --model BASE --pairs e0.jsonl.gz e1.jsonl.gz \\
      --out TRAINED --epochs 10 --lr 1e-3 --batch-size 256 [--reference ref.json]

is `python3 -m p5rec.train ...` with python/ on the path (or after
`pip install ./python`). On one device --batch-size is the global batch, as
before; under torchrun it is per rank (--global-batch fixes the total).
`--recipe MODEL/recipe.json` takes the optimizer, schedule and batch defaults
from a model p5rec trained (the recipe it resolved), instead of repeating them.
See `python3 -m p5rec.train --help` and docs/p5.md ("Going bigger").
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from p5rec.train_args import parse_args  # noqa: E402

if __name__ == "__main__":
    # Arguments (and --help, and --recipe) first: they need no torch.
    parse_args(sys.argv[1:])
    from p5rec.train import main  # noqa: E402

    sys.exit(main())


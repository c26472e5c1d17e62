"""Two optimizer options p5rec's own trainer has (src/train), for the PyTorch one:

- item rows at their own learning-rate scale (`p5rec train --item-lr-scale`):
  the item id rows of the token table step at `item_scale` × the base rate
  instead of the table's `--embedding-lr-scale`, with the weight decay at
  the base rate as everywhere. PyTorch's AdamW gives one rate per tensor, so
  the item rows' update is rescaled after each step. Adam's moments depend
  on the gradients only, so this is exactly p5rec's per-row rate.
- a moving average of the weights (`p5rec train --ema-decay`): after update
  n, avg += (1 - d)(w - avg) with d = min(decay, (1 + n) / (10 + n)).
"""
import contextlib
import json
import os

import torch

ONE_TOKEN_INDEXINGS = ("independent", "cid+iid")


def item_rows(folder, token_to_id):
    """Token-table rows of the items' own id tokens (the last piece of each id in ids.json), as p5rec's itemRows."""
    path = os.path.join(folder, "ids.json")
    try:
        with open(path, encoding="utf-8") as f:
            ids = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: {e} (--item-lr-scale needs the model's item ids)") from e
    if not isinstance(ids, dict) or ids.get("format") != "p5rec-ids" or not isinstance(ids.get("items"), list):
        raise ValueError(f"{path}: not a p5rec ids file")
    if ids.get("indexing") not in ONE_TOKEN_INDEXINGS:
        raise ValueError(f"{path}: --item-lr-scale needs one token per item (indexing {' or '.join(ONE_TOKEN_INDEXINGS)}), got {ids.get('indexing')!r}")
    rows = []
    for j, text in enumerate(ids["items"]):
        piece = str(text).split(" ")[-1]
        if piece not in token_to_id:
            raise ValueError(f"{path}: items[{j}] ({text!r}): its id token {piece!r} is not in the tokenizer")
        rows.append(token_to_id[piece])
    return sorted(set(rows))


class ItemRowScale:
    """Rescales the item rows' AdamW update of the token table (see the module doc)."""

    def __init__(self, table, rows, item_scale, table_scale, weight_decay):
        self.table = table
        self.rows = torch.tensor(rows, dtype=torch.long, device=table.device)
        self.ratio = item_scale / table_scale
        self.weight_decay = weight_decay
        self.old = None

    def before_step(self):
        self.old = self.table.detach()[self.rows].clone()

    @torch.no_grad()
    def after_step(self, lr):
        # AdamW gave w·(1 − lr·wd) − lr·table_scale·dir (the table group's decay is wd / table_scale);
        # keep the decay, scale the Adam part to lr·item_scale·dir.
        decayed = self.old * (1 - lr * self.weight_decay)
        self.table[self.rows] = decayed + (self.table[self.rows] - decayed) * self.ratio
        self.old = None


class WeightAverage:
    """An exponential moving average of a model's parameters (float32), resumable."""

    def __init__(self, model, decay, state=None):
        if not 0 < decay < 1:
            raise ValueError(f"--ema-decay must be in (0, 1), got {decay}")
        self.named = [(n, p) for n, p in model.named_parameters()]
        self.decay = decay
        if state is None:
            self.n = 0
            self.avg = {n: p.detach().float().clone() for n, p in self.named}
        else:
            missing = [n for n, _ in self.named if n not in state["avg"]]
            if missing:
                raise ValueError(f"the saved weight average lacks {missing[0]}")
            self.n = int(state["n"])
            self.avg = {n: state["avg"][n].to(p.device).float().clone() for n, p in self.named}

    @torch.no_grad()
    def update(self):
        self.n += 1
        d = min(self.decay, (1 + self.n) / (10 + self.n))
        for n, p in self.named:
            self.avg[n].add_(p.detach().float() - self.avg[n], alpha=1 - d)

    def state(self):
        return {"n": self.n, "avg": {n: t.cpu().clone() for n, t in self.avg.items()}}

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the average inside the block, its own weights again after it."""
        with torch.no_grad():
            raw = {n: p.detach().clone() for n, p in self.named}
            for n, p in self.named:
                p.copy_(self.avg[n])
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in self.named:
                    p.copy_(raw[n])

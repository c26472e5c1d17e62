"""Streaming the exported pairs (`p5rec prompts export`: JSONL, optionally .gz /
.xz; {"source", "target"} objects or [source, target] arrays).

The global batches of an epoch are a function of the file, the seed and the
global batch size only, never of the number of processes, so N ranks with
G/N examples each train on exactly the batches one process with G would:

1. the file is read in buffers of `G * bucket` lines (only the raw strings are
   held: memory is bounded by the buffer, not the file);
2. each buffer is shuffled (seeded by seed, epoch and buffer number), sorted by
   source length (characters: no tokenizing needed to plan), cut into global
   batches of G, and the batches shuffled: length bucketing inside a buffer;
3. global batch b goes to DataLoader worker b % workers; inside it, rank r
   takes its contiguous slice (np.array_split: sizes differ by at most one).
   Only that slice is tokenized, by that rank's worker.

A last partial batch with fewer examples than ranks is dropped (logged as
`dropped`); with --global-batch a multiple of the ranks and the file's line
count, nothing is.
"""
import gzip
import json
import lzma
import math
import random

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info


def open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf8")
    if path.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf8")
    return open(path, encoding="utf8")


def parse_pair(line, where):
    try:
        d = json.loads(line)
        return (d[0], d[1]) if isinstance(d, list) else (d["source"], d["target"])
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ValueError(f"{where}: not a pair line ({e}); expected {{\"source\", \"target\"}} or [source, target]") from None


def count_pairs(path):
    n = 0
    with open_text(path) as f:
        for line in f:
            if line.strip():
                n += 1
    return n


def batches_in(n_pairs, global_batch, world):
    full, rest = divmod(n_pairs, global_batch)
    return full + (1 if rest >= world else 0)


def _buffers(path, size):
    buf = []
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            buf.append(parse_pair(line, f"{path}:{n}"))
            if len(buf) == size:
                yield buf
                buf = []
    if buf:
        yield buf


def plan_epoch(path, global_batch, seed, epoch, bucket=64, world=1):
    """Yield (batch index, [(source, target)] of the global batch), in training order."""
    b = 0
    for k, buf in enumerate(_buffers(path, global_batch * bucket)):
        rng = random.Random(f"{seed}/{epoch}/{k}")
        order = list(range(len(buf)))
        rng.shuffle(order)
        order.sort(key=lambda i: len(buf[i][0]))  # stable: equal lengths keep the shuffled order
        groups = [order[i : i + global_batch] for i in range(0, len(order), global_batch)]
        groups = [g for g in groups if len(g) >= world]
        rng.shuffle(groups)
        for g in groups:
            yield b, [buf[i] for i in g]
            b += 1


class PairStream(IterableDataset):
    """Yields this rank's tokenized micro-batches of one epoch, from `start` (global batch index) on."""

    def __init__(self, path, tokenizer, global_batch, rank=0, world=1, seed=0, epoch=0, start=0, bucket=64,
                 max_source=512, max_target=64, ww_rows=512, decoder_start=0):
        self.path, self.tok, self.G, self.rank, self.world = path, tokenizer, global_batch, rank, world
        self.seed, self.epoch, self.start, self.bucket = seed, epoch, start, bucket
        self.max_source, self.max_target, self.ww_rows, self.decoder_start = max_source, max_target, ww_rows, decoder_start

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        for b, pairs in plan_epoch(self.path, self.G, self.seed, self.epoch, self.bucket, self.world):
            if b < self.start or (b - self.start) % nw != wid:
                continue
            idx = np.array_split(np.arange(len(pairs)), self.world)[self.rank]
            mine = [pairs[i] for i in idx]
            batch = self.tok.batch([s for s, _ in mine], [t for _, t in mine], self.max_source, self.max_target, self.ww_rows, self.decoder_start)
            batch["index"] = torch.tensor(b)
            yield batch

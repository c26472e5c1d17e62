"""p5rec's tokenizer.json on the Python side, with P5's whole-word ids exactly
as src/tokenizer/whole-word.ts and T5Tokenizer.finish compute them:

- pieces are clipped to max_len - 1 and `</s>` appended (sources and targets);
- a word starts at each piece beginning with "▁" and at each id token (the
  added, non-special tokens of tokenizer.json, e.g. `item_548`); words are
  counted from 1, `</s>` and `<pad>` get 0, pieces before the first word 0;
- indices are clipped to rows - 1 (the table has 512 rows: 0..511).

Encoding uses the Python `tokenizers` package when installed, else the p5rec
npm package's own binding through a node child process (_tokenize.mjs).
"""
import json
import os
import shutil
import subprocess

import numpy as np
import torch

WORD_MARKER = "\u2581"
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"

try:  # pragma: no cover - depends on the machine
    from tokenizers import Tokenizer as _HFTokenizer
except ImportError:
    _HFTokenizer = None


def whole_word_ids(pieces, ids, eos_id, pad_id, max_index=511, id_tokens=frozenset()):
    """P5's whole-word index of each piece (see the module doc)."""
    out, word = [], 0
    for p, i in zip(pieces, ids):
        if i == eos_id or i == pad_id:
            out.append(0)
            continue
        if p.startswith(WORD_MARKER) or i in id_tokens:
            word += 1
        out.append(min(word, max_index))
    return out


def _node_module_dirs():
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    if os.environ.get("P5REC_ROOT"):
        dirs.append(os.environ["P5REC_ROOT"])
    dirs.append(os.path.normpath(os.path.join(here, "..", "..")))  # python/p5rec inside the repository
    dirs.append(os.getcwd())
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
            if root:
                dirs.append(os.path.join(root, "p5rec"))
        except (OSError, subprocess.SubprocessError):
            pass
    return dirs


class _NodeEncoder:
    """The tokenizers Node binding in a child process (one per process / DataLoader worker)."""

    def __init__(self, path):
        node = shutil.which("node")
        if not node:
            raise RuntimeError("neither the Python 'tokenizers' package nor node is installed: pip install tokenizers")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_tokenize.mjs")
        self.args = [node, script, os.path.abspath(path), *_node_module_dirs()]
        self.proc = None
        self.pid = None

    def _start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf8", bufsize=1)
        self.pid = os.getpid()

    def encode_batch(self, texts):
        if self.proc is None or self.pid != os.getpid() or self.proc.poll() is not None:
            self._start()  # a forked DataLoader worker starts its own
        self.proc.stdin.write(json.dumps({"texts": list(texts)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"tokenizer bridge failed: {self.proc.stderr.read().strip()}")
        d = json.loads(line)
        return list(zip(d["ids"], d["tokens"]))

    def __getstate__(self):
        return {"args": self.args, "proc": None, "pid": None}

    def close(self):
        if self.proc is not None and self.pid == os.getpid():
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
            self.proc = None


class _HFEncoder:
    def __init__(self, path):
        self.tk = _HFTokenizer.from_file(path)

    def encode_batch(self, texts):
        return [(list(e.ids), list(e.tokens)) for e in self.tk.encode_batch(list(texts), add_special_tokens=False)]

    def close(self):
        pass


class Batch(dict):
    """Padded tensors: input_ids, attention_mask, whole_word_ids, labels (-100 past the end), decoder_input_ids."""

    def model_inputs(self):
        return {k: self[k] for k in ("input_ids", "attention_mask", "whole_word_ids", "decoder_input_ids")}

    def to(self, device):
        return Batch({k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in self.items()})


class P5Tokenizer:
    def __init__(self, path, backend=None):
        with open(path, encoding="utf8") as f:
            spec = json.load(f)
        self.path = path
        vocab = spec["model"]["vocab"]
        self.token_to_id = {p: i for i, (p, _) in enumerate(vocab)} if spec["model"]["type"] == "Unigram" else dict(spec["model"]["vocab"])
        for a in spec.get("added_tokens", []):
            self.token_to_id[a["content"]] = a["id"]
        self.pad_id = self.token_to_id[PAD]
        self.eos_id = self.token_to_id[EOS]
        self.unk_id = self.token_to_id.get(UNK, -1)
        self.id_tokens = frozenset(a["id"] for a in spec.get("added_tokens", []) if a.get("special") is False)
        self.vocab_size = max(self.token_to_id.values()) + 1
        backend = backend or os.environ.get("P5REC_TOKENIZER") or ("tokenizers" if _HFTokenizer is not None else "node")
        self.backend = backend
        self.enc = _HFEncoder(path) if backend == "tokenizers" else _NodeEncoder(path)

    @classmethod
    def from_folder(cls, folder, backend=None):
        return cls(os.path.join(folder, "tokenizer.json"), backend)

    def encode_batch(self, texts, max_len=512, ww_rows=512):
        """[(ids, whole_word_ids)] with `</s>` appended after clipping to max_len - 1 pieces."""
        out = []
        for ids, pieces in self.enc.encode_batch(texts):
            ids = list(ids)[: max_len - 1] + [self.eos_id]
            pieces = list(pieces)[: max_len - 1] + [EOS]
            ww = whole_word_ids(pieces, ids, self.eos_id, self.pad_id, ww_rows - 1, self.id_tokens) if ww_rows else None
            out.append((ids, ww))
        return out

    def batch(self, sources, targets=None, max_source=512, max_target=64, ww_rows=512, decoder_start=0):
        """Tokenize and pad: the p5rec collate (labels -100 past the end; decoder input = [start, labels[:-1]])."""
        src = self.encode_batch(sources, max_source, ww_rows)
        out = Batch()
        out["input_ids"] = _pad([s[0] for s in src], self.pad_id)
        # Mask by length, as p5rec's collateSeq2Seq.
        lens = torch.tensor([len(s[0]) for s in src])
        out["attention_mask"] = (torch.arange(out["input_ids"].shape[1])[None, :] < lens[:, None]).long()
        out["whole_word_ids"] = _pad([s[1] or [0] * len(s[0]) for s in src], 0)
        if targets is not None:
            tgt = self.encode_batch(targets, max_target, 0)
            labels = _pad([t[0] for t in tgt], -100)
            dec = torch.full_like(labels, self.pad_id)
            dec[:, 0] = decoder_start
            dec[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, self.pad_id)
            out["labels"] = labels
            out["decoder_input_ids"] = dec
        return out

    def close(self):
        self.enc.close()


def _pad(rows, value):
    n = max(len(r) for r in rows)
    out = np.full((len(rows), n), value, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)

"""safetensors files: the `safetensors` package when installed, else a small
reader/writer of the same format (8-byte little-endian header length, a JSON
header {name: {dtype, shape, data_offsets}}, then the raw little-endian data)."""
import json
import os
import struct

import torch

try:  # pragma: no cover - depends on the machine
    from safetensors.torch import load_file as _st_load, save_file as _st_save
except ImportError:  # Debian 12 has no python3-safetensors
    _st_load = _st_save = None

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
_NAMES = {v: k for k, v in _DTYPES.items()}


def load_file(path):
    if _st_load is not None:
        return _st_load(path)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        buf = bytearray(data[a:b])
        t = torch.frombuffer(buf, dtype=dtype) if b > a else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def save_file(tensors, path, metadata=None):
    if _st_save is not None:
        return _st_save(tensors, path, metadata=metadata)
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # aligned data, as the Rust writer pads
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_weights(folder):
    """All tensors of a model folder (model.safetensors or a sharded index), or None."""
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return load_file(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        return None
    with open(index) as f:
        files = sorted(set(json.load(f)["weight_map"].values()))
    sd = {}
    for name in files:
        sd.update(load_file(os.path.join(folder, name)))
    return sd


def save_sharded(sd, out_dir, dtype="f32", shard_mb=0):
    """Write `sd` as model.safetensors, or shards + index when over `shard_mb` (0 = one file)."""
    conv = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    tensors = {k: v.detach().to("cpu", conv).contiguous() for k, v in sd.items()}
    limit = (shard_mb or 1e12) * 1024 * 1024
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
    os.makedirs(out_dir, exist_ok=True)
    old = [f for f in os.listdir(out_dir) if f.startswith("model") and (f.endswith(".safetensors") or f.endswith(".index.json"))]
    if len(shards) == 1:
        tmp = os.path.join(out_dir, ".model.safetensors.tmp")
        save_file(shards[0], tmp, metadata={"format": "pt"})
        for f in old:
            if f != "model.safetensors":
                os.remove(os.path.join(out_dir, f))
        os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
        return ["model.safetensors"]
    for f in old:
        os.remove(os.path.join(out_dir, f))
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
    tmp = os.path.join(out_dir, ".index.tmp")
    with open(tmp, "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, "model.safetensors.index.json"))
    return names + ["model.safetensors.index.json"]

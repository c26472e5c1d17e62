"""A p5rec training recipe (recipe.json in a model folder, written by `p5rec train`)
as defaults for the PyTorch trainer, so the two trainers share one set of values
instead of repeating them. Needs no torch: the trainer's arguments are parsed
(and `--help` shown) before torch is imported.
"""
import json

RECIPE_FORMAT = "p5rec-recipe"


def recipe_defaults(path):
    """argparse defaults (dest -> value) from a recipe.json; ValueError names what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: {e}") from e
    if not isinstance(r, dict) or r.get("format") != RECIPE_FORMAT:
        raise ValueError(f"{path}: not a p5rec recipe (format {r.get('format') if isinstance(r, dict) else None!r}, expected {RECIPE_FORMAT!r})")
    try:
        model, opt, data, loop = r["model"], r["optimizer"], r["data"], r["loop"]
        out = {
            "lr": float(opt["lr"]),
            "weight_decay": float(opt["weightDecay"]),
            "adam_eps": float(opt["adamEps"]),
            "warmup": float(opt["warmupRatio"]),
            "clip": float(opt["clipNorm"]),
            "embedding_lr_scale": float(opt["embeddingLrScale"]),
            "epochs": int(loop["epochs"]),
            # p5rec's step cap plans the schedule the same way; null: all the epochs.
            "steps": int(loop["steps"] or 0),
            "seed": int(loop["seed"]),
            "max_source": int(data["maxSourceLength"]),
            # p5rec's batches hold at most maxBatch examples (fewer when the token budget is met),
            # batchesPerStep of them per step: the most examples one of its steps sees.
            "batch_size": int(data["maxBatch"]) * int(loop["batchesPerStep"]),
        }
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: missing or malformed field {e}") from e
    # Newer recipes only; null means off, as in p5rec.
    for key, dest in (("itemLrScale", "item_lr_scale"), ("emaDecay", "ema_decay")):
        if opt.get(key) is not None:
            try:
                out[dest] = float(opt[key])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}: malformed field optimizer.{key}: {e}") from e
    if model.get("dropout") is not None:
        out["dropout"] = float(model["dropout"])
    return out

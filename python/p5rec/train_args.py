"""The PyTorch trainer's command line (p5rec/train.py), without torch: `--help`
and bad arguments answer before torch is imported, and a recipe.json written by
`p5rec train` (--recipe) supplies the defaults the two trainers share.
"""
import argparse

from .recipe import recipe_defaults

DESCRIPTION = "Train a p5rec P5 model with PyTorch: one CPU, one GPU, or many under torchrun."
STATE_FILE = "hf-train-state.pt"


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="p5rec.train", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", help="recipe.json of a p5rec model folder: its lr, weight decay, epsilon, warmup, clipping, embedding-lr-scale, item-lr-scale, ema-decay, epochs, steps, seed, max-source, batch (maxBatch × batchesPerStep) and dropout become the defaults; flags given still win")
    ap.add_argument("--model", required=True, help="p5rec model folder: config.json, tokenizer.json, optional initial weights")
    ap.add_argument("--pairs", nargs="*", default=[], help="exported pairs (JSONL, optionally .gz or .xz), one file per epoch, cycled")
    ap.add_argument("--out", help="folder to write (required unless --epochs 0)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=0, help="plan at most this many optimizer steps (the schedule's length; 0 = all epochs)")
    ap.add_argument("--stop-after", type=int, default=0, help="stop (checkpointed, resumable) after this step; the schedule stays --steps long")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--global-batch", type=int, default=0, help="examples per optimizer step over all ranks (default: --batch-size × ranks)")
    ap.add_argument("--batch-size", type=int, default=256, help="examples per rank per step when --global-batch is not given")
    ap.add_argument("--bucket", type=int, default=64, help="global batches per length-bucketing buffer (memory: bucket × global batch lines)")
    ap.add_argument("--workers", type=int, default=-1, help="DataLoader workers per rank (tokenizing); default 2 on a GPU, 0 on CPU")
    ap.add_argument("--max-source", type=int, default=512)
    ap.add_argument("--max-target", type=int, default=64)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--adam-eps", type=float, default=1e-6, help="AdamW epsilon (p5rec's and P5's default 1e-6)")
    ap.add_argument("--embedding-lr-scale", type=float, default=1.0, help="learning-rate multiplier for shared.weight (p5rec train --embedding-lr-scale)")
    ap.add_argument("--item-lr-scale", type=float, default=None, help="learning-rate multiplier for the items' own token rows (one token per item: ids.json indexing 'independent' or 'cid+iid'), in place of --embedding-lr-scale there (p5rec train --item-lr-scale)")
    ap.add_argument("--ema-decay", type=float, default=None, help="keep an exponential moving average of the weights, decay min(D, (1+n)/(10+n)) after update n; the folder holds the average (p5rec train --ema-decay)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=None, help="dropout rate (default: config.json's)")
    ap.add_argument("--max-seconds", type=float, default=0, help="cap on training time (0 = none); the schedule is shortened to fit")
    ap.add_argument("--save-every", type=int, default=0, help="write the folder and the resume state every n steps (0 = at the end only)")
    ap.add_argument("--resume", action="store_true", help=f"continue from OUT/{STATE_FILE}")
    ap.add_argument("--reference", help="logits from scripts/t5-reference.mjs to check against before training")
    ap.add_argument("--dtype", default="f16", choices=["f32", "f16", "bf16"], help="dtype of the saved weights")
    ap.add_argument("--shard-mb", type=float, default=0, help="split the weights into files of at most this size (0 = one file)")
    ap.add_argument("--no-amp", action="store_true", help="train in float32 (default on a GPU: bfloat16 autocast)")
    ap.add_argument("--seed", type=int, default=0)
    # The recipe's values replace the built-in defaults; flags on the command line override both.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe")
    known, _ = pre.parse_known_args(argv)
    if known.recipe:
        try:
            ap.set_defaults(**recipe_defaults(known.recipe))
        except ValueError as e:
            ap.error(f"--recipe: {e}")
    return ap.parse_args(argv)

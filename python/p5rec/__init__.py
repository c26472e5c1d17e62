"""p5rec's Python side.

    from p5rec import P5, P5Tokenizer
    model = P5.from_p5rec("MODEL")                  # config.json + model.safetensors (+ whole-word table)
    tok = P5Tokenizer.from_folder("MODEL")          # tokenizer.json, P5's whole-word ids
    batch = tok.batch(["Will user_1 like item_2 ?"], ["yes"])
    logits = model.p5rec_logits(**batch.model_inputs())
    model.save_p5rec("OUT", source="MODEL")         # a folder `p5rec eval` loads

`P5` subclasses transformers' T5ForConditionalGeneration when transformers is
installed (`p5rec.BACKEND == "transformers"`); otherwise it is the package's own
PyTorch T5 with the same parameter names and numbers (`"torch"`).
"""
__all__ = ["BACKEND", "P5", "P5_EXTRA", "P5Tokenizer", "load_config", "whole_word_ids"]
__version__ = "0.1.0"

# Imported on first use (PEP 562), so the torch-free modules (p5rec.recipe,
# p5rec.train_args) load, and the trainer's --help answers, without torch.
_LAZY = {"BACKEND": "model", "P5": "model", "P5_EXTRA": "model", "load_config": "model", "P5Tokenizer": "tokenizer", "whole_word_ids": "tokenizer"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

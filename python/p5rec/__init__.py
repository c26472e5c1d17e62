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
from .model import BACKEND, P5, P5_EXTRA, load_config
from .tokenizer import P5Tokenizer, whole_word_ids

__all__ = ["BACKEND", "P5", "P5_EXTRA", "P5Tokenizer", "load_config", "whole_word_ids"]
__version__ = "0.1.0"

"""`P5`: a T5 with P5's whole-word embeddings, loaded from and saved to a p5rec
model folder (config.json in the HF T5 layout + `whole_word_embeddings`,
model.safetensors or shards with HF names + `encoder.whole_word_embeddings.weight`,
tokenizer.json, tokenizer_config.json, p5rec's p5.json / model.json / ids.json).

The encoder input is shared(input_ids) + whole_word_embeddings(whole_word_ids),
as p5rec's engine computes it (whole-word ids clipped to the table's rows).
"""
import json
import os
import shutil
import types

import torch
from torch import nn

from .st import load_weights, save_sharded

P5_EXTRA = "encoder.whole_word_embeddings.weight"
# HF's copies of the tied embedding: p5rec writes only `shared.weight`.
TIED_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")
# Files of a p5rec model folder besides the weights and config.json.
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "p5.json", "model.json", "ids.json")

_DEFAULTS = dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=None, num_heads=8,
                 relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
                 layer_norm_epsilon=1e-6, feed_forward_proj="relu", tie_word_embeddings=True, initializer_factor=1.0,
                 pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, whole_word_embeddings=512)

try:  # pragma: no cover - depends on the machine
    from transformers import T5Config as _HFConfig, T5ForConditionalGeneration as _HFT5
    BACKEND = "transformers"
except ImportError:
    _HFConfig = _HFT5 = None
    BACKEND = "torch"
if os.environ.get("P5REC_BACKEND") == "torch":
    BACKEND = "torch"


def load_config(folder_or_file):
    """config.json as a dict with p5rec's defaults filled in (as src/models/t5/config.ts)."""
    path = os.path.join(folder_or_file, "config.json") if os.path.isdir(folder_or_file) else folder_or_file
    with open(path) as f:
        raw = json.load(f)
    if raw.get("model_type", "t5") != "t5":
        raise ValueError(f"{path}: a '{raw['model_type']}' model, not t5")
    out = dict(_DEFAULTS)
    out.update({k: v for k, v in raw.items() if k in _DEFAULTS and v is not None})
    if out["num_decoder_layers"] is None:
        out["num_decoder_layers"] = out["num_layers"]
    for k in ("initializer_factor", "dropout_rate", "layer_norm_epsilon"):
        out[k] = float(out[k])
    return out


def _config_object(fields):
    if BACKEND == "transformers":
        return _HFConfig(**fields)  # whole_word_embeddings rides along as an attribute
    return types.SimpleNamespace(**fields)


class _P5Mixin:
    """What P5 adds to either T5 backend."""

    def _init_p5(self, config):
        rows = int(getattr(config, "whole_word_embeddings", 0) or 0)
        self.ww_rows = rows
        if rows:
            # Under `encoder`, so the state dict name is exactly p5rec's encoder.whole_word_embeddings.weight.
            self.encoder.whole_word_embeddings = nn.Embedding(rows, config.d_model)

    def encoder_embeddings(self, input_ids, whole_word_ids=None):
        emb = self.shared(input_ids)
        if self.ww_rows and whole_word_ids is not None:
            emb = emb + self.encoder.whole_word_embeddings(whole_word_ids.clamp(0, self.ww_rows - 1))
        return emb

    def p5rec_logits(self, input_ids, attention_mask=None, whole_word_ids=None, decoder_input_ids=None):
        """Logits [B, T, V] with teacher forcing on decoder_input_ids: p5rec's T5Model.forward."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        emb = self.encoder_embeddings(input_ids, whole_word_ids)
        if BACKEND == "transformers":
            enc = self.encoder(inputs_embeds=emb, attention_mask=attention_mask).last_hidden_state
            dec = self.decoder(input_ids=decoder_input_ids, encoder_hidden_states=enc, encoder_attention_mask=attention_mask, use_cache=False).last_hidden_state
        else:
            enc = self.encoder(emb, attention_mask)
            dec = self.decoder(self.shared(decoder_input_ids), None, enc, attention_mask)
        # Written out (not HF's head) so the numbers do not depend on a transformers version's head wiring.
        if self.config.tie_word_embeddings:
            return (dec * self.config.d_model ** -0.5) @ self.shared.weight.t()
        return self.lm_head(dec)

    def p5rec_state(self):
        """The tensors p5rec writes: HF names without the tied copies, plus the whole-word table."""
        tied = self.config.tie_word_embeddings
        return {k: v for k, v in self.state_dict().items() if not (tied and k in TIED_COPIES)}

    def load_p5rec_state(self, sd, where="weights"):
        sd = dict(sd)
        if "shared.weight" not in sd:
            for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
                if k in sd:
                    sd["shared.weight"] = sd[k]
                    break
        own = self.state_dict()
        missing = [k for k in own if k not in sd and k not in TIED_COPIES and k != P5_EXTRA]
        unexpected = [k for k in sd if k not in own and k not in TIED_COPIES and "EncDecAttention.relative_attention_bias" not in k]
        if missing or unexpected:
            raise ValueError(f"{where}: config.json does not match the weights: missing {missing[:3]}, unexpected {unexpected[:3]}")
        for k, v in own.items():
            if k in sd:
                if tuple(sd[k].shape) != tuple(v.shape):
                    raise ValueError(f"{where}: {k} has shape {list(sd[k].shape)}, config.json gives {list(v.shape)}")
                with torch.no_grad():
                    v.copy_(sd[k].to(v.dtype))
        return [P5_EXTRA] if self.ww_rows and P5_EXTRA not in sd else []

    @classmethod
    def from_p5rec(cls, folder, dropout=None, **overrides):
        """Load a p5rec (or plain HF T5) model folder; `dropout` overrides config.json's rate."""
        fields = load_config(folder)
        fields.update(overrides)
        if dropout is not None:
            fields["dropout_rate"] = float(dropout)
        model = cls(_config_object(fields))
        sd = load_weights(folder)
        model.initialised = []
        if sd is not None:
            model.initialised = model.load_p5rec_state(sd, folder)
        model.p5rec_fields = fields
        return model

    def save_p5rec(self, out, source=None, dtype="f32", shard_mb=0):
        """Write the folder p5rec loads: weights (f32/f16/bf16, optionally sharded), config.json, and the
        tokenizer/P5 files copied from `source` (the folder the model came from)."""
        os.makedirs(out, exist_ok=True)
        if source and os.path.abspath(source) != os.path.abspath(out):
            for f in SIDE_FILES + ("config.json",):
                if os.path.exists(os.path.join(source, f)):
                    shutil.copyfile(os.path.join(source, f), os.path.join(out, f))
        if not os.path.exists(os.path.join(out, "config.json")):
            cfg = {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "is_encoder_decoder": True, **self.p5rec_fields}
            cfg["dense_act_fn"] = "gelu_new" if cfg["feed_forward_proj"] == "gated-gelu" else "relu"
            cfg["is_gated_act"] = cfg["feed_forward_proj"] != "relu"
            with open(os.path.join(out, ".config.tmp"), "w") as f:
                json.dump(cfg, f, indent=2)
            os.replace(os.path.join(out, ".config.tmp"), os.path.join(out, "config.json"))
        return save_sharded(self.p5rec_state(), out, dtype, shard_mb)


if BACKEND == "transformers":  # pragma: no cover - depends on the machine

    class P5(_P5Mixin, _HFT5):
        """transformers' T5ForConditionalGeneration + P5's whole-word embeddings.

        forward(..., whole_word_ids=...) and generate(..., whole_word_ids=...) add the table
        to the encoder input; without whole_word_ids it is plain T5 (as p5rec with no table)."""

        def __init__(self, config):
            super().__init__(config)
            if config.tie_word_embeddings:  # one table, whatever a transformers version ties by itself
                self.encoder.embed_tokens = self.shared
                self.decoder.embed_tokens = self.shared
            self._init_p5(config)

        def forward(self, input_ids=None, attention_mask=None, whole_word_ids=None, inputs_embeds=None, encoder_outputs=None, **kw):
            if whole_word_ids is not None and inputs_embeds is None and encoder_outputs is None and input_ids is not None:
                inputs_embeds, input_ids = self.encoder_embeddings(input_ids, whole_word_ids), None
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, encoder_outputs=encoder_outputs, **kw)

        def generate(self, input_ids=None, whole_word_ids=None, attention_mask=None, **kw):
            if whole_word_ids is not None and input_ids is not None and "encoder_outputs" not in kw:
                if attention_mask is None:
                    attention_mask = torch.ones_like(input_ids)
                enc = self.get_encoder()(inputs_embeds=self.encoder_embeddings(input_ids, whole_word_ids), attention_mask=attention_mask, return_dict=True)
                return super().generate(encoder_outputs=enc, attention_mask=attention_mask, **kw)
            return super().generate(input_ids=input_ids, attention_mask=attention_mask, **kw)

else:
    from .t5_torch import TorchT5

    class P5(_P5Mixin, TorchT5):
        """The package's own PyTorch T5 (HF names and numbers) + P5's whole-word embeddings."""

        def __init__(self, config):
            super().__init__(config)
            self._init_p5(config)

        def forward(self, input_ids, attention_mask=None, whole_word_ids=None, decoder_input_ids=None, labels=None):
            if decoder_input_ids is None:
                decoder_input_ids = shift_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
            logits = self.p5rec_logits(input_ids, attention_mask, whole_word_ids, decoder_input_ids)
            loss = None
            if labels is not None:
                loss = nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
            return types.SimpleNamespace(loss=loss, logits=logits)


def shift_right(labels, pad_id, start_id):
    dec = torch.full_like(labels, pad_id)
    dec[:, 0] = start_id
    dec[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, pad_id)
    return dec

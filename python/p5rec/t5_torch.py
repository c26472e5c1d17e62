"""T5 in plain PyTorch, for machines without transformers (Debian 12 has no
python3-transformers). Module and parameter names are HF's
(`encoder.block.0.layer.0.SelfAttention.q.weight`, ...), and the arithmetic
follows HF's modeling_t5 (and so p5rec's engine): RMSNorm before every
sub-layer, unscaled attention scores, bucketed relative position bias from
block 0 of each stack, ReLU or gated FFN, dropout at HF's places, tied output
layer rescaled by d_model^-0.5."""
import math

import torch
from torch import nn


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    relative_buckets = 0
    if bidirectional:
        num_buckets //= 2
        relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return relative_buckets + torch.where(is_small, relative_position, large)


class T5LayerNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.variance_epsilon = eps

    def forward(self, h):
        variance = h.to(torch.float32).pow(2).mean(-1, keepdim=True)
        h = h * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            h = h.to(self.weight.dtype)
        return self.weight * h


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class DenseReluDense(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gated = c.feed_forward_proj != "relu"
        if self.gated:
            self.wi_0 = nn.Linear(c.d_model, c.d_ff, bias=False)
            self.wi_1 = nn.Linear(c.d_model, c.d_ff, bias=False)
        else:
            self.wi = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)
        self.dropout = nn.Dropout(c.dropout_rate)
        self.act = gelu_new if c.feed_forward_proj == "gated-gelu" else torch.relu

    def forward(self, h):
        h = self.act(self.wi_0(h)) * self.wi_1(h) if self.gated else self.act(self.wi(h))
        return self.wo(self.dropout(h))


class LayerFF(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.DenseReluDense = DenseReluDense(c)
        self.layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)
        self.dropout = nn.Dropout(c.dropout_rate)

    def forward(self, h):
        return h + self.dropout(self.DenseReluDense(self.layer_norm(h)))


class Attention(nn.Module):
    def __init__(self, c, is_decoder, has_bias):
        super().__init__()
        self.c, self.is_decoder = c, is_decoder
        inner = c.num_heads * c.d_kv
        self.q = nn.Linear(c.d_model, inner, bias=False)
        self.k = nn.Linear(c.d_model, inner, bias=False)
        self.v = nn.Linear(c.d_model, inner, bias=False)
        self.o = nn.Linear(inner, c.d_model, bias=False)
        self.has_bias = has_bias
        if has_bias:
            self.relative_attention_bias = nn.Embedding(c.relative_attention_num_buckets, c.num_heads)
        self.dropout = nn.Dropout(c.dropout_rate)

    def compute_bias(self, q_len, k_len, device):
        ctx = torch.arange(q_len, dtype=torch.long, device=device)[:, None]
        mem = torch.arange(k_len, dtype=torch.long, device=device)[None, :]
        buckets = relative_position_bucket(mem - ctx, not self.is_decoder, self.c.relative_attention_num_buckets, self.c.relative_attention_max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)  # [1, H, q, k]

    def forward(self, h, kv=None, bias=None):
        B, Lq, _ = h.shape
        kv = h if kv is None else kv
        H, D = self.c.num_heads, self.c.d_kv
        q = self.q(h).view(B, -1, H, D).transpose(1, 2)
        k = self.k(kv).view(B, -1, H, D).transpose(1, 2)
        v = self.v(kv).view(B, -1, H, D).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(3, 2)) + bias
        w = nn.functional.softmax(scores.float(), dim=-1).type_as(scores)
        w = self.dropout(w)
        out = torch.matmul(w, v).transpose(1, 2).contiguous().view(B, Lq, H * D)
        return self.o(out)


class LayerSelfAttention(nn.Module):
    def __init__(self, c, is_decoder, has_bias):
        super().__init__()
        self.SelfAttention = Attention(c, is_decoder, has_bias)
        self.layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)
        self.dropout = nn.Dropout(c.dropout_rate)

    def forward(self, h, bias):
        return h + self.dropout(self.SelfAttention(self.layer_norm(h), bias=bias))


class LayerCrossAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.EncDecAttention = Attention(c, True, False)
        self.layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)
        self.dropout = nn.Dropout(c.dropout_rate)

    def forward(self, h, enc, bias):
        return h + self.dropout(self.EncDecAttention(self.layer_norm(h), kv=enc, bias=bias))


class Block(nn.Module):
    def __init__(self, c, is_decoder, has_bias):
        super().__init__()
        self.is_decoder = is_decoder
        layers = [LayerSelfAttention(c, is_decoder, has_bias)]
        if is_decoder:
            layers.append(LayerCrossAttention(c))
        layers.append(LayerFF(c))
        self.layer = nn.ModuleList(layers)

    def forward(self, h, self_bias, enc=None, cross_bias=None):
        h = self.layer[0](h, self_bias)
        if self.is_decoder:
            h = self.layer[1](h, enc, cross_bias)
        return self.layer[-1](h)


def _mask_bias(mask, dtype):
    return (1.0 - mask.to(dtype)) * torch.finfo(dtype).min


class Stack(nn.Module):
    def __init__(self, c, is_decoder):
        super().__init__()
        self.is_decoder = is_decoder
        n = c.num_decoder_layers if is_decoder else c.num_layers
        self.block = nn.ModuleList([Block(c, is_decoder, i == 0) for i in range(n)])
        self.final_layer_norm = T5LayerNorm(c.d_model, c.layer_norm_epsilon)
        self.dropout = nn.Dropout(c.dropout_rate)

    def forward(self, emb, attention_mask=None, enc=None, enc_mask=None):
        B, L, _ = emb.shape
        dtype = emb.dtype
        if attention_mask is None:
            attention_mask = torch.ones(B, L, device=emb.device)
        mask = attention_mask[:, None, None, :].to(dtype)
        if self.is_decoder:
            causal = torch.tril(torch.ones(L, L, device=emb.device, dtype=dtype))
            mask = causal[None, None, :, :] * mask
        bias = self.block[0].layer[0].SelfAttention.compute_bias(L, L, emb.device).to(dtype) + _mask_bias(mask, dtype)
        cross = None
        if self.is_decoder:
            cross = torch.zeros(1, 1, 1, enc.shape[1], device=emb.device, dtype=dtype) + _mask_bias(enc_mask[:, None, None, :], dtype)
        h = self.dropout(emb)
        for blk in self.block:
            h = blk(h, bias, enc, cross)
        return self.dropout(self.final_layer_norm(h))


class TorchT5(nn.Module):
    """shared / encoder / decoder (/ lm_head when untied), HF's names."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.shared = nn.Embedding(c.vocab_size, c.d_model)
        self.encoder = Stack(c, False)
        self.decoder = Stack(c, True)
        if not c.tie_word_embeddings:
            self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)

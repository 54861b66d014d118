#!/usr/bin/env python3
"""An independent float64 forward pass of a Hugging Face llama-family causal LM.

Written from the architecture's definition (LlamaForCausalLM / Qwen2ForCausalLM), sharing
no code with the engine, candle or transformers: it reads `config.json` and the
`*.safetensors` files itself (header JSON + little-endian data) and computes in float64:

    x = embed[ids]
    per layer:  h = rmsnorm(x) * w_in
                q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)     (heads of size d)
                q, k = rope(q), rope(k)    rotate_half, inv_freq = theta^(-2i/d)
                scores = q k^T / sqrt(d), causal; p = softmax(scores); ctx = p v
                (query head j reads key/value head j // (heads / kv_heads))
                x = x + ctx Wo^T
                h = rmsnorm(x) * w_post;  x = x + (silu(h Wg^T) * (h Wu^T)) Wd^T
    logits = rmsnorm(x) * w_norm  Wlm^T      (Wlm = embed when the embeddings are tied)

Reads JSON from stdin: {"ids": [...], "new_tokens": N}. Writes JSON: the logits of every
position of `ids` and the greedy continuation of N tokens (argmax, lowest id on ties),
each step a full forward pass over the sequence so far (no cache).

Usage: llama_numpy.py MODEL_DIR < request.json
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load_safetensors(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = data[base + start:base + end]
        if meta["dtype"] == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[meta["dtype"]]).newbyteorder("<"))
        tensors[name] = arr.astype(np.float64).reshape(meta["shape"])
    return tensors


class Model:
    def __init__(self, folder):
        folder = Path(folder)
        self.c = json.loads((folder / "config.json").read_text())
        self.w = {}
        for f in sorted(folder.glob("*.safetensors")):
            self.w.update(load_safetensors(f))
        c = self.c
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        self.d = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c["rms_norm_eps"]
        theta = c.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / theta ** (np.arange(0, self.d, 2, dtype=np.float64) / self.d)
        self.lm_head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, positions):
        # x: [heads, t, d]
        angles = np.outer(positions, self.inv_freq)  # [t, d/2]
        cos = np.concatenate([np.cos(angles)] * 2, axis=-1)
        sin = np.concatenate([np.sin(angles)] * 2, axis=-1)
        half = self.d // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rotated * sin

    def proj(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def forward(self, ids):
        t = len(ids)
        x = self.w["model.embed_tokens.weight"][ids]
        positions = np.arange(t, dtype=np.float64)
        mask = np.triu(np.full((t, t), -np.inf), k=1)
        group = self.heads // self.kv_heads
        for layer in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{layer}."
            h = self.rmsnorm(x, self.w[p + "input_layernorm.weight"])
            q = self.proj(h, p + "self_attn.q_proj").reshape(t, self.heads, self.d).transpose(1, 0, 2)
            k = self.proj(h, p + "self_attn.k_proj").reshape(t, self.kv_heads, self.d).transpose(1, 0, 2)
            v = self.proj(h, p + "self_attn.v_proj").reshape(t, self.kv_heads, self.d).transpose(1, 0, 2)
            q, k = self.rope(q, positions), self.rope(k, positions)
            ctx = np.empty((self.heads, t, self.d))
            for j in range(self.heads):
                kv = j // group
                s = q[j] @ k[kv].T / np.sqrt(self.d) + mask
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                s = s / s.sum(axis=-1, keepdims=True)
                ctx[j] = s @ v[kv]
            ctx = ctx.transpose(1, 0, 2).reshape(t, self.heads * self.d)
            x = x + self.proj(ctx, p + "self_attn.o_proj")
            h = self.rmsnorm(x, self.w[p + "post_attention_layernorm.weight"])
            g = self.proj(h, p + "mlp.gate_proj")
            u = self.proj(h, p + "mlp.up_proj")
            x = x + self.proj(g / (1.0 + np.exp(-g)) * u, p + "mlp.down_proj")
        x = self.rmsnorm(x, self.w["model.norm.weight"])
        return x @ self.lm_head.T


def main():
    model = Model(sys.argv[1])
    req = json.load(sys.stdin)
    ids = list(req["ids"])
    logits = model.forward(np.array(ids))
    greedy = []
    seq = list(ids)
    for _ in range(req.get("new_tokens", 0)):
        row = model.forward(np.array(seq))[-1]
        token = int(np.argmax(row))  # first maximum: the lowest id on ties
        greedy.append(token)
        seq.append(token)
    json.dump({"logits": logits.tolist(), "greedy": greedy}, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""An independent reference for BERT sentence embeddings (all-MiniLM-L6-v2).

Written from the BERT paper and the Hugging Face file formats, sharing no code with the
engine: a plain-Python WordPiece tokenizer reading tokenizer.json's vocabulary, a float64
numpy forward pass reading model.safetensors directly, mean pooling and L2 normalisation.

Usage: minilm_numpy.py MODEL_DIR < sentences.json  (a JSON list of strings)
Prints a JSON list of embeddings (lists of floats), one per sentence.
"""
import json
import math
import struct
import sys
import unicodedata

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(raw[base + start : base + end], dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokens(text):
    # BertNormalizer: clean control chars, lowercase, strip accents (NFD, drop Mn).
    text = "".join(" " if ch.isspace() else ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf") or ch.isspace())
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    tokens = []
    for word in text.split():
        current = ""
        for ch in word:
            if is_punct(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


def wordpiece(word, vocab, unk="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return [unk]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text, vocab, max_len):
    ids = []
    for word in basic_tokens(text):
        ids.extend(vocab[p] for p in wordpiece(word, vocab))
    ids = ids[: max_len - 2]
    return [vocab["[CLS]"]] + ids + [vocab["[SEP]"]]


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


erf = np.vectorize(math.erf)


def embed(ids, p, cfg):
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    d = h // heads
    eps = cfg["layer_norm_eps"]
    n = len(ids)
    x = p["embeddings.word_embeddings.weight"][ids]
    x = x + p["embeddings.position_embeddings.weight"][:n]
    x = x + p["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, p["embeddings.LayerNorm.weight"], p["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        pre = f"encoder.layer.{i}."
        lin = lambda v, name: v @ p[pre + name + ".weight"].T + p[pre + name + ".bias"]
        q = lin(x, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        ctx = (scores @ v).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(
            lin(ctx, "attention.output.dense") + x,
            p[pre + "attention.output.LayerNorm.weight"],
            p[pre + "attention.output.LayerNorm.bias"],
            eps,
        )
        inter = lin(x, "intermediate.dense")
        inter = 0.5 * inter * (1.0 + erf(inter / math.sqrt(2.0)))
        x = layer_norm(
            lin(inter, "output.dense") + x,
            p[pre + "output.LayerNorm.weight"],
            p[pre + "output.LayerNorm.bias"],
            eps,
        )
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def main():
    model_dir = sys.argv[1]
    cfg = json.load(open(f"{model_dir}/config.json"))
    tok = json.load(open(f"{model_dir}/tokenizer.json"))
    vocab = tok["model"]["vocab"]
    max_len = (tok.get("truncation") or {}).get("max_length") or cfg["max_position_embeddings"]
    params = load_safetensors(f"{model_dir}/model.safetensors")
    sentences = json.load(sys.stdin)
    out = []
    for s in sentences:
        ids = tokenize(s, vocab, max_len)
        out.append({"ids": ids, "embedding": embed(ids, params, cfg).tolist()})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

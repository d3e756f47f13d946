"""Generated hostile input for resfam, shared by the property-based test (tests/test_fuzz.py,
hypothesis drives the ``random.Random``) and the long subprocess run (benchmarks/fuzz.py).

A case is ``(kind, payload)`` where the payload is plain data (JSON-able except the checkpoint
recipes' tensors, which :func:`run_case` makes), so a case can be sent to a worker process and
printed when it fails. :func:`run_case` returns ``"built"`` or ``"resfam error"`` and lets any
other exception escape: that is the bug the fuzzers look for.
"""
from __future__ import annotations

import copy
import os
import random
import tempfile

KINDS = ("spec", "yaml", "args", "checkpoint", "cli")

# small and mid-sized variants of every family; builds in the fuzzers are capped at FUZZ_BYTES
SEED_SPECS = ("resnet20", "plain20", "highway20", "preact_resnet164", "wrn_16_8", "resnet18",
              "resnet50", "resnet50d", "resnext50_32x4d", "res2net50_26w_4s", "iresnet50",
              "resnetv2_50", "res2net50_iresnet")
FUZZ_BYTES = 128 * 2 ** 20  # max_param_bytes in the fuzzers: every build takes well under 2 s
FUZZ_BLOCKS = 200

ODD_VALUES = [0, -1, 1, 2, 3, 4, 7, 8, 32, 64, 1000, 10 ** 7, 10 ** 9, 2 ** 63, 10 ** 30, -10 ** 30,
              0.0, 0.5, -0.5, 1.0, 1.5, 2.0, float("nan"), float("inf"), -float("inf"),
              True, False, None, "", "x", "relu", "bn", "basic", "bottleneck", "res2", "post", "pre",
              "iresnet", "gate", "none", "conv1x1", "zero_pad", "a" * 300, "3x3", "1x1", "auto",
              [], [1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5], [[1]], ["x"], [None],
              {}, {"type": "basic"}, {"type": "nope"}, {"type": ["basic"]}, {"a": 1}, [{"type": "x"}]]
KEYS = ["name", "family", "extends", "stem", "stages", "block", "shortcut", "merge", "order", "norm",
        "act", "head", "in_chans", "input_size", "reported", "type", "width", "depth", "stride",
        "groups", "base_width", "scale", "expansion", "stride_on", "stype", "dropout", "bias_init",
        "kernel_size", "num_classes", "drop_rate", "deep_width", "variants", "bogus", 7]


def _odd(rng: random.Random):
    return copy.deepcopy(rng.choice(ODD_VALUES))


def _paths(value, prefix=()):
    """Every (path) into nested dicts / lists, the root included."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _get(root, path):
    for p in path:
        root = root[p]
    return root


def mutate(value, rng: random.Random, n: int):
    """``n`` random edits of a nested dict / list: replace, delete, add a key, resize a list,
    swap in another node of the same document."""
    value = copy.deepcopy(value)
    for _ in range(n):
        paths = [p for p in _paths(value) if p]
        if not paths:
            return _odd(rng)
        path = rng.choice(paths)
        parent, last = _get(value, path[:-1]), path[-1]
        op = rng.random()
        if op < 0.3:
            parent[last] = _odd(rng)
        elif op < 0.6:
            del parent[last]
        elif op < 0.7 and isinstance(parent, dict):
            parent[rng.choice(KEYS)] = _odd(rng)
        elif op < 0.8 and isinstance(parent[last], list):
            lst = parent[last]
            parent[last] = lst + lst[:1] if rng.random() < 0.5 else lst[:-1]
        elif op < 0.9:
            parent[last] = copy.deepcopy(_get(value, rng.choice(paths)))
        else:  # a nearby value: most of these still build, which exercises the builder
            old = parent[last]
            if isinstance(old, bool) or not isinstance(old, (int, float)):
                parent[last] = _odd(rng)
            else:
                parent[last] = rng.choice([old + 1, old - 1, old * 2, old // 2, -old, 10 ** 4 * old])
    return value


def spec_case(rng: random.Random) -> dict:
    import resfam

    base = rng.choice(SEED_SPECS)
    raw = copy.deepcopy(resfam.get_spec(base).raw) if rng.random() < 0.7 else \
        {"extends": base, "name": "fuzzed"}
    return {"spec": mutate(raw, rng, rng.choice([1, 1, 1, 2, 3]))}


def yaml_case(rng: random.Random) -> dict:
    import yaml

    import resfam

    doc = copy.deepcopy(resfam.get_spec(rng.choice(SEED_SPECS)).raw)
    text = yaml.safe_dump(mutate(doc, rng, rng.randint(0, 2)), sort_keys=False)
    for _ in range(rng.randint(0, 4)):
        i = rng.randrange(len(text) + 1)
        edit = rng.choice(["", "&a ", "*a", "[", "]", "{", "}", ":", "\n  - ", "!!python/name:os.system ",
                           "\x00", "\udcff", "\t", "'", "~", "<<: *a\n", "? ", "%YAML 1.1\n"])
        cut = rng.choice([0, 0, 1, 5])
        text = text[:i] + edit + text[i + cut:]
    if rng.random() < 0.1:
        depth = rng.choice([40, 1000])
        text += f"\nnote: {'[' * depth}{']' * depth}\n"
    return {"text": text, "encoding": rng.choice(["utf-8"] * 5 + ["latin-1", "utf-16"])}


BUILD_ARG_VALUES = {
    "num_classes": [None, 0, 10, 1000, -1, "10", 10 ** 9, 2.5, True],
    "in_chans": [None, 1, 3, 4, 0, -3, 1.5, "3", 10 ** 6],
    "drop_rate": [None, 0.0, 0.2, 1.0, -0.1, float("nan"), "0.1", 1],
    "drop_path_rate": [0.0, 0.1, 0.99, 1.0, 2, float("inf"), None],
    "zero_init_last": [True, False, "no", 0, 1, None],
    "output_stride": [8, 16, 32, 4, 64, "16", None, 16.0],
    "features_only": [True, False, "yes", None],
    "out_indices": [None, [0], [1, 2, 3], (4,), [-1], [1, 1], [9], [], "12", [1.5], [None], (0, 1, 2, 3, 4, 5)],
    "as_dict": [True, False, "x"],
    "frozen_stages": [-1, 0, 1, 4, 5, -2, None, "1"],
    "norm_eval": [True, False, None],
    "norm_layer": [None, "bn", "gn", "frozen_bn", "syncbn", "batch", 3],
    "max_param_bytes": [FUZZ_BYTES, FUZZ_BYTES, 1, 0, -5, 10 ** 4, "big"],
    "max_blocks": [FUZZ_BLOCKS, FUZZ_BLOCKS, 1, 0, "10"],
    "num_clases": [10],
}


def args_case(rng: random.Random) -> dict:
    names = rng.sample(sorted(BUILD_ARG_VALUES), rng.randint(1, 4))
    kwargs = {n: copy.deepcopy(rng.choice(BUILD_ARG_VALUES[n])) for n in names}
    ref = rng.choice(list(SEED_SPECS) + [None, 5, "resnet5", "no/such.yaml", "", ["resnet18"],
                                         "a\x00.yaml", "/dev/zero", "/tmp", "x" * 5000 + ".yaml",
                                         "/dev/null", "resnet18.yaml:resnet18", {"name": 3}])
    return {"ref": ref, "kwargs": kwargs}


CHECKPOINT_EDITS = ("drop", "rename", "reshape", "dtype", "sparse", "meta", "not_tensor", "int_key",
                    "wrap", "self_wrap", "prefix", "list", "scalar", "bool", "huge_key", "extra",
                    "nested_wrap")


def checkpoint_case(rng: random.Random) -> dict:
    return {"model": rng.choice(["resnet20", "resnet18", "iresnet50", "resnetv2_50", "res2net50_26w_4s"]),
            "source": rng.choice(["resfam", "torchvision", "timm"]),
            "edits": [(rng.choice(CHECKPOINT_EDITS), rng.random()) for _ in range(rng.randint(0, 3))],
            "strict": rng.choice([True, False, True, "yes"]),
            "suffix": rng.choice([".pth", ".pth", ".safetensors", ".bin"])}


CLI_FLAGS = [["--batch-size", "0"], ["--batch-size", "-3"], ["--batch-size", "x"], ["--runs", "0"],
             ["--threads", "-1"], ["--img-size", "0"], ["--img-size", "99999"], ["--device", "meta"],
             ["--device", "cuda:7"], ["--device", ""], ["--format", "xml"], ["--sort", "nope"],
             ["--sort=-params"], ["--family", "nofam"], ["--output", "/no/dir/x.csv"], ["--plot", "x.jpg"],
             ["--plot", "/no/dir/p.png"], ["--bogus"], ["--warmup", "-1"], ["--dtype", "int8"],
             ["--params"], ["--format", "json"], ["--format", "csv"], ["--format", "markdown"],
             ["--sort", "params"], ["--sort=-params"], ["--output", "x.csv"], ["--threads", "1"],
             ["--img-size", "64"], ["--batch-size", "2"], ["--family", "highway"]]


def cli_case(rng: random.Random) -> dict:
    models = rng.sample(["resnet20", "plain20", "resnet5", "preact*", "nothing*", "x.yaml", "a/b",
                         "/dev/zero", "/tmp"],
                        rng.randint(1, 2))  # never none: that would sweep the whole zoo
    flags = [f for group in rng.sample(CLI_FLAGS, rng.choice([0, 1, 1, 2])) for f in group]
    return {"argv": models + flags}


GENERATORS = {"spec": spec_case, "yaml": yaml_case, "args": args_case,
              "checkpoint": checkpoint_case, "cli": cli_case}


def make_case(kind: str, rng: random.Random) -> dict:
    return GENERATORS[kind](rng)


# --- running a case ------------------------------------------------------------------------

def _source_state(model_name: str, source: str):
    import timm
    import torchvision

    import resfam

    if source == "torchvision" and hasattr(torchvision.models, model_name):
        return getattr(torchvision.models, model_name)().state_dict()
    if source == "timm" and model_name in timm.list_models():
        return timm.create_model(model_name).state_dict()
    return resfam.build(model_name).state_dict()


def _edit_state(state: dict, edit: str, u: float):
    import torch

    keys = list(state)
    key = keys[int(u * len(keys)) % len(keys)] if keys else "x"
    value = state.get(key, torch.zeros(1))
    if edit == "drop":
        state.pop(key, None)
    elif edit == "rename":
        state[f"layer9.{key}"] = state.pop(key, value)
    elif edit == "reshape":
        state[key] = torch.zeros(value.numel() + 1) if torch.is_tensor(value) else value
    elif edit == "dtype":
        state[key] = value.to([torch.float16, torch.int64, torch.complex64, torch.bool][int(u * 4) % 4]) \
            if torch.is_tensor(value) else value
    elif edit == "sparse" and torch.is_tensor(value) and value.dim() >= 1:
        state[key] = value.to_sparse()
    elif edit == "meta" and torch.is_tensor(value):
        state[key] = torch.empty_like(value, device="meta")
    elif edit == "not_tensor":
        state[key] = [1.0, 2.0] if u < 0.5 else "weights"
    elif edit == "int_key":
        state[int(u * 100)] = value
    elif edit == "wrap":
        return {"state_dict": state, "epoch": 3}
    elif edit == "nested_wrap":
        for _ in range(int(u * 12)):
            state = {"model": state}
        return state
    elif edit == "self_wrap":
        outer: dict = {}
        outer["state_dict"] = outer
        return outer
    elif edit == "prefix":
        return {f"{'module.' if u < 0.5 else 'backbone.'}{k}": v for k, v in state.items()}
    elif edit == "list":
        return list(state.values())
    elif edit == "scalar":
        state[key] = torch.tensor(1.0)
    elif edit == "bool":
        return True
    elif edit == "huge_key":
        state["k" * 100_000] = value
    elif edit == "extra":
        state["fc2.weight"] = torch.zeros(3, 3)
    return state


def _run_checkpoint(case: dict, folder: str) -> str:
    import torch

    import resfam

    state = _source_state(case["model"], case["source"])
    for edit, u in case["edits"]:
        state = _edit_state(state, edit, u) if isinstance(state, dict) else state
    path = os.path.join(folder, "ckpt" + case["suffix"])
    try:
        if case["suffix"] == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, path)
        else:
            torch.save(state, path)
    except Exception:  # noqa: BLE001 - an unsavable recipe (the writer refused): a junk file then
        with open(path, "wb") as f:
            f.write(b"\x80\x02junk")
    model = resfam.build(case["model"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        resfam.load_pretrained(model, path, strict=case["strict"])
    except resfam.ResfamError:
        after = model.state_dict()
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        assert not changed, f"a failed load changed {len(changed)} tensors: {changed[:3]}"
        raise
    return "built"


def _encode(text: str, encoding: str) -> bytes:
    for errors in ("surrogateescape", "surrogatepass", "replace"):
        try:
            return text.encode(encoding, errors=errors)
        except UnicodeEncodeError:
            continue
    return text.encode("utf-8", errors="replace")


def run_case(kind: str, case: dict) -> str:
    """``'built'`` (the input worked) or ``'resfam error'``; any other exception escapes."""
    import resfam

    try:
        with tempfile.TemporaryDirectory() as folder:
            if kind == "spec":
                resfam.build(case["spec"], max_param_bytes=FUZZ_BYTES, max_blocks=FUZZ_BLOCKS)
            elif kind == "yaml":
                path = os.path.join(folder, "fuzzed.yaml")
                with open(path, "wb") as f:
                    f.write(_encode(case["text"], case["encoding"]))
                resfam.build(path, max_param_bytes=FUZZ_BYTES, max_blocks=FUZZ_BLOCKS)
            elif kind == "args":
                kwargs = dict(case["kwargs"])
                kwargs.setdefault("max_param_bytes", FUZZ_BYTES)
                kwargs.setdefault("max_blocks", FUZZ_BLOCKS)
                resfam.build(case["ref"], **kwargs)
            elif kind == "checkpoint":
                return _run_checkpoint(case, folder)
            elif kind == "cli":
                return _run_cli(case, folder)
        return "built"
    except resfam.ResfamError:
        return "resfam error"


def _run_cli(case: dict, folder: str) -> str:
    """The CLI in-process on params only (the sweep is replaced by a cheap count): usage errors
    must exit 2 with one line, a sweep 0 or 1; never a traceback."""
    import contextlib
    import io

    from resfam.comparison import cli

    argv = [a.replace("x.csv", os.path.join(folder, "x.csv")) for a in case["argv"]]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli.main(["--no-progress", "--params", *argv][:64])
        except SystemExit as e:  # argparse's own usage errors
            rc = e.code
    text = err.getvalue()
    assert rc in (0, 1, 2), f"exit code {rc}"
    assert "Traceback" not in text, text
    return "resfam error" if rc == 2 else "built"

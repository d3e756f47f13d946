"""Generated hostile input for resfam, shared by the property-based test (tests/test_fuzz.py,
hypothesis drives the ``random.Random``) and the long subprocess run (benchmarks/fuzz.py).

A case is ``(kind, payload)`` where the payload is plain data (JSON-able except the checkpoint
recipes' tensors, which :func:`run_case` makes), so a case can be sent to a worker process and
printed when it fails. :func:`run_case` returns ``"built"`` or ``"resfam error"``; every other
outcome is an exception, and the oracle tells five kinds of failure apart:

- :class:`SilentAcceptance`: a case that "built" but not what was asked (a bool or a float taken
  as a whole number, a YAML key given twice, a checkpoint tensor that did not load as it was, a
  report missing rows);
- :class:`HalfLoaded`: a checkpoint load, failed or interrupted at a random moment (Ctrl-C),
  that left the model neither as it was nor fully loaded;
- :class:`DamagedFile`: an output interrupted at a random moment that is neither its old content
  nor a complete new file (or a temporary file left behind);
- a hang (the caller's time limit) and any other exception (an escape).
"""
from __future__ import annotations

import copy
import os
import random
import tempfile

KINDS = ("spec", "yaml", "args", "checkpoint", "cli", "output", "api", "probe_cli", "train_cli", "space")


class SilentAcceptance(AssertionError):
    """Accepted, but not what was asked."""


class HalfLoaded(AssertionError):
    """A model neither as it was nor fully loaded."""


class DamagedFile(AssertionError):
    """An output neither old nor complete."""

# small and mid-sized variants of every family; builds in the fuzzers are capped at FUZZ_BYTES
SEED_SPECS = ("resnet20", "plain20", "highway20", "preact_resnet164", "wrn_16_8", "resnet18",
              "resnet50", "resnet50d", "resnext50_32x4d", "res2net50_26w_4s", "iresnet50",
              "resnetv2_50", "res2net50_iresnet", "inception_resnet_v2")
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
            "suffix": rng.choice([".pth", ".pth", ".safetensors", ".bin"]),
            "interrupt_ms": rng.choice([None, None, rng.uniform(0, 40)])}


def _into(folder: str, arg: str) -> str:
    """An output file the case names (x.csv, x.html) goes into the case's own folder."""
    return os.path.join(folder, arg) if arg in ("x.csv", "x.html") else arg


CLI_FLAGS = [["--batch-size", "0"], ["--batch-size", "-3"], ["--batch-size", "x"], ["--runs", "0"],
             ["--threads", "-1"], ["--img-size", "0"], ["--img-size", "99999"], ["--device", "meta"],
             ["--device", "cuda:7"], ["--device", ""], ["--format", "xml"], ["--sort", "nope"],
             ["--sort=-params"], ["--family", "nofam"], ["--output", "/no/dir/x.csv"], ["--plot", "x.jpg"],
             ["--plot", "/no/dir/p.png"], ["--bogus"], ["--warmup", "-1"], ["--dtype", "int8"],
             ["--params"], ["--format", "json"], ["--format", "csv"], ["--format", "markdown"],
             ["--sort", "params"], ["--sort=-params"], ["--output", "x.csv"], ["--threads", "1"],
             ["--img-size", "64"], ["--batch-size", "2"], ["--family", "highway"],
             ["--img-size", "native"], ["--img-size", "nat"], ["--batch-size", "1,2"],
             ["--batch-size", "1,1"], ["--batch-size", "1,,2"], ["--output", "x.html"]]


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
    if case.get("interrupt_ms") is not None:
        return _interrupted_load(model, before, path, case)
    try:
        report = resfam.load_pretrained(model, path, strict=case["strict"])
    except resfam.ResfamError:
        after = model.state_dict()
        changed = [k for k in before if not torch.equal(before[k], after[k])]
        if changed:
            raise HalfLoaded(f"a failed load changed {len(changed)} tensors: {changed[:3]}") from None
        raise
    _check_loaded(model, report, path)
    return "built"


def _check_loaded(model, report, path: str) -> None:
    """The oracle of a load that succeeded: every tensor it says it loaded holds the file's
    (converted) value, what it dropped is a classifier of another number of classes, and values
    no trained network has are reported."""
    import torch

    from resfam.weights.checkpoint import read_checkpoint
    from resfam.weights.convert import convert_state_dict

    state = convert_state_dict(read_checkpoint(path), model)
    own = model.state_dict()
    skip = set(report.missing) | set(report.dropped) | set(report.adapted) | set(report.unexpected)
    for key, value in state.items():
        if key in skip or key not in own:
            continue
        if not torch.equal(own[key], value.to(own[key].dtype)):
            raise SilentAcceptance(f"{key} did not load as the file holds it")
    for key in report.dropped:
        if key in own and key in state and key.startswith("fc.") and (
                state[key].shape[1:] != own[key].shape[1:] or state[key].ndim != own[key].ndim):
            raise SilentAcceptance(f"{key} {tuple(state[key].shape)} was dropped as a classifier of "
                                   f"another size; the model's is {tuple(own[key].shape)}")
    odd = [k for k, v in state.items() if k in own and k not in skip and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if odd and not report.suspicious:
        raise SilentAcceptance(f"non-finite values loaded without a word: {odd[:3]}")


def _interrupting(ms: float):
    """A context in which Ctrl-C arrives after ``ms`` of this process's CPU time (SIGVTALRM: the
    wall-clock SIGALRM is the callers' hang guard)."""
    import contextlib
    import signal

    @contextlib.contextmanager
    def ctx():
        def interrupt(*_):
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGVTALRM, interrupt)
        signal.setitimer(signal.ITIMER_VIRTUAL, max(ms, 0.01) / 1000)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
            signal.signal(signal.SIGVTALRM, old)

    return ctx()


def _interrupted_load(model, before: dict, path: str, case: dict) -> str:
    """Ctrl-C at a random moment of a load: the model is as it was, or as a load without
    interruption leaves it; nothing in between."""
    import torch

    import resfam

    outcome = "built"
    try:
        with _interrupting(case["interrupt_ms"]):
            resfam.load_pretrained(model, path, strict=case["strict"])
    except KeyboardInterrupt:
        outcome = "resfam error"  # interrupted: the promise is about the model, checked below
    except resfam.ResfamError:
        outcome = "resfam error"
    after = model.state_dict()
    if all(torch.equal(before[k], after[k]) for k in before):
        return outcome
    full = resfam.build(case["model"])
    full.load_state_dict(before)
    try:
        resfam.load_pretrained(full, path, strict=case["strict"])
    except resfam.ResfamError:
        raise HalfLoaded("an interrupted load changed a model that a full load leaves unchanged") from None
    loaded = full.state_dict()
    changed = [k for k in before if not torch.equal(after[k], loaded[k])]
    if changed:
        raise HalfLoaded(f"an interrupted load left {len(changed)} tensors half-way: {changed[:3]}")
    return outcome


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
                model = resfam.build(case["spec"], max_param_bytes=FUZZ_BYTES, max_blocks=FUZZ_BLOCKS)
                _check_no_coercion(case["spec"], model.spec)
            elif kind == "yaml":
                path = os.path.join(folder, "fuzzed.yaml")
                data = _encode(case["text"], case["encoding"])
                with open(path, "wb") as f:
                    f.write(data)
                model = resfam.build(path, max_param_bytes=FUZZ_BYTES, max_blocks=FUZZ_BLOCKS)
                _check_yaml_build(data, model.spec)
            elif kind == "args":
                kwargs = dict(case["kwargs"])
                kwargs.setdefault("max_param_bytes", FUZZ_BYTES)
                kwargs.setdefault("max_blocks", FUZZ_BLOCKS)
                model = resfam.build(case["ref"], **kwargs)
                _check_args(case["kwargs"], model)
            elif kind == "checkpoint":
                return _run_checkpoint(case, folder)
            elif kind == "cli":
                return _run_cli(case, folder)
            else:
                return RUNNERS[kind](case, folder)
        return "built"
    except resfam.ResfamError:
        return "resfam error"


def _run_cli(case: dict, folder: str) -> str:
    """The CLI in-process on params only (the sweep is replaced by a cheap count): usage errors
    must exit 2 with one line, a sweep 0 or 1; never a traceback."""
    import contextlib
    import io

    from resfam.comparison import cli

    argv = [_into(folder, a) for a in case["argv"]]
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


# --- the silent-acceptance oracle of builds ---------------------------------------------------

_MISSING = object()
SECTIONS = ("block", "shortcut", "merge", "attn")  # validated per stage: StagePlan's fields


def _leaves(value):
    """(path, value) of every scalar in nested dicts / lists (:func:`_paths`' leaves)."""
    for path in _paths(value):
        leaf = _get(value, path)
        if not isinstance(leaf, (dict, list)):
            yield path, leaf


def _lookup(tree, path):
    for p in path:
        if isinstance(tree, dict) and p in tree:
            tree = tree[p]
        elif isinstance(tree, (list, tuple)) and isinstance(p, int) and 0 <= p < len(tree):
            tree = tree[p]
        else:
            return _MISSING
    return tree


def _coerced(given, got) -> bool:
    """``given`` became a value of another kind: a bool or a float taken as a whole number, a
    number taken as a bool. A whole number taken as a float is widening, not coercion."""
    if isinstance(given, bool):
        return not isinstance(got, bool)
    if isinstance(given, float):
        return not isinstance(got, float)
    if isinstance(given, int):
        return isinstance(got, bool) or not isinstance(got, (int, float))
    return False


def _check_no_coercion(raw, spec) -> None:
    """Every number and bool of the user's mapping is in the validated spec as the kind it was
    given (pydantic's Literal[1, 2] took True for 1 and 2.0 for 2)."""
    if not isinstance(raw, dict):
        return
    dump = spec.model.model_dump()
    plans = [{s: getattr(p, s).model_dump() for s in SECTIONS if hasattr(getattr(p, s), "model_dump")}
             for p in spec.stages]
    for path, value in _leaves(raw):
        if not path or value is None or isinstance(value, str) or path[0] in ("reported", "name"):
            continue
        if path[0] in SECTIONS:
            rest = path[1:]
            for i, plan in enumerate(plans):
                got = _lookup(plan.get(path[0], {}), rest)
                if got is _MISSING and len(rest) >= 2 and rest[1] == i:  # a per-stage list entry
                    got = _lookup(plan.get(path[0], {}), rest[:1] + rest[2:])
                if got is not _MISSING and _coerced(value, got):
                    raise SilentAcceptance(f"{'.'.join(map(str, path))}: {value!r} became {got!r}")
        else:
            got = _lookup(dump, path)
            if got is not _MISSING and _coerced(value, got):
                raise SilentAcceptance(f"{'.'.join(map(str, path))}: {value!r} became {got!r}")


def _yaml(read, text: str):
    """``read`` (compose or load) with libyaml's safe loader, else PyYAML's: the two scanners
    differ at the edges (libyaml takes a tab inside a plain scalar), and a text that built was
    read by one of them."""
    import yaml

    try:
        return read(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return read(text, Loader=yaml.SafeLoader)


def _duplicate_keys(text: str) -> list:
    """Keys given twice in one mapping, found on PyYAML's node tree (independent of resfam's
    loader); a ``<<`` merge key does not count."""
    import yaml

    found, stack = [], [_yaml(yaml.compose, text)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            keys = [(k.tag, k.value) for k, _ in node.value
                    if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge"]
            found += [k for k in set(keys) if keys.count(k) > 1]
            stack += [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return found


def _check_yaml_build(data: bytes, spec) -> None:
    import yaml

    text = data.decode("utf-8")  # it built: resfam read it as UTF-8
    twice = _duplicate_keys(text)
    if twice:
        raise SilentAcceptance(f"a YAML file with keys given twice built: {twice[:3]}")
    doc = _yaml(yaml.load, text)
    if isinstance(doc, dict) and isinstance(doc.get("variants"), dict) and len(doc["variants"]) == 1:
        doc = next(iter(doc["variants"].values()))
    _check_no_coercion(doc, spec)


BOOL_ARGS = ("zero_init_last", "features_only", "as_dict", "norm_eval")
INT_ARGS = ("num_classes", "in_chans", "output_stride", "frozen_stages", "max_param_bytes",
            "max_blocks", "norm_groups")


def _check_args(kwargs: dict, model) -> None:
    """Build arguments taken as given: no bool for a number, no float for a whole number, no
    number for a bool; and the model holds what was asked."""
    for key, value in kwargs.items():
        if value is None:
            continue
        if key in INT_ARGS and (isinstance(value, bool) or not isinstance(value, int)):
            raise SilentAcceptance(f"{key}={value!r} accepted where a whole number is meant")
        if key in BOOL_ARGS and not isinstance(value, bool):
            raise SilentAcceptance(f"{key}={value!r} accepted where True or False is meant")
    if kwargs.get("num_classes") is not None and not kwargs.get("features_only") \
            and model.num_classes != kwargs["num_classes"]:
        raise SilentAcceptance(f"num_classes={kwargs['num_classes']} built {model.num_classes}")
    if kwargs.get("in_chans") is not None and model.in_chans != kwargs["in_chans"]:
        raise SilentAcceptance(f"in_chans={kwargs['in_chans']} built {model.in_chans}")
    if kwargs.get("features_only") and kwargs.get("out_indices") is not None:
        levels = len(model.spec.stages) + 1
        asked = sorted(i % levels for i in kwargs["out_indices"])
        if list(model.feature_info.out_indices) != asked:
            raise SilentAcceptance(f"out_indices={kwargs['out_indices']} returns levels "
                                   f"{list(model.feature_info.out_indices)}")


# --- outputs interrupted at a random moment ----------------------------------------------------

OUTPUT_FORMATS = (".csv", ".json", ".jsonl", ".md", ".tex")


def output_case(rng: random.Random) -> dict:
    return {"models": rng.sample(["resnet20", "plain20", "resnet18", "highway20", "resnet32"],
                                 rng.randint(1, 3)),
            "suffix": rng.choice(OUTPUT_FORMATS), "old": rng.choice([None, "old report\n", ""]),
            "resume": rng.random() < 0.3, "latency": rng.random() < 0.5,
            "interrupt_ms": rng.choice([None, rng.uniform(0, 30), rng.uniform(0, 300)])}


def _complete(text: str, suffix: str, models: list) -> bool:
    """A whole report of ``suffix``'s format whose rows are some of ``models``."""
    import csv
    import io
    import json

    try:
        if suffix == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
            return text.endswith("\n") and all(r.get("model") in models for r in rows)
        if suffix == ".json":
            rows = json.loads(text)["rows"]
            return all(r["model"] in models for r in rows)
        if suffix == ".jsonl":
            return text.endswith("\n") and all(json.loads(line)["model"] in models
                                               for line in text.splitlines())
    except (ValueError, KeyError, TypeError):
        return False
    return text.endswith("\n")  # .md / .tex: whole lines (an interrupted sweep may have no rows)


def _run_output(case: dict, folder: str) -> str:
    """resfam-compare writing a report, interrupted (Ctrl-C) at a random moment: the file is its
    old content or a complete new one, and nothing else is left in the folder."""
    import contextlib
    import io

    from resfam.comparison import cli

    path = os.path.join(folder, "report" + case["suffix"])
    if case["old"] is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(case["old"])
    resume = case["resume"] and case["suffix"] == ".jsonl"
    argv = [*case["models"], "--params", "--no-progress", "--output", path,
            *(["--resume"] if resume else []),
            *(["--latency", "--runs", "2", "--warmup", "0"] if case["latency"] else [])]
    rc = None
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            if case["interrupt_ms"] is None:
                rc = cli.main(argv)
            else:
                with _interrupting(case["interrupt_ms"]):
                    rc = cli.main(argv)
        except KeyboardInterrupt:
            rc = 130
        finally:  # a Ctrl-C inside torch's own no_grad() __enter__ can leave grad mode off; the
            import torch  # real process exits on Ctrl-C, this worker goes on to the next case

            torch.set_grad_enabled(True)
    left = sorted(n for n in os.listdir(folder) if n != os.path.basename(path))
    if left:
        raise DamagedFile(f"left behind: {left}")
    if not os.path.exists(path):
        if case["old"] is not None:
            raise DamagedFile("the old report is gone and no new one was written")
        return "resfam error" if rc else "built"
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if case["old"] is not None and text == case["old"]:
        return "resfam error" if rc else "built"
    if resume and case["old"] is not None and text.startswith(case["old"]):
        text = text[len(case["old"]):]  # appended after the old lines (not rows: skipped)
    if not _complete(text, case["suffix"], case["models"]):
        raise DamagedFile(f"{case['suffix']} report neither old nor complete: {text[:120]!r}")
    if rc == 0 and case["suffix"] in (".csv", ".json", ".jsonl"):
        for model in case["models"]:
            if model not in text:
                raise SilentAcceptance(f"exit 0 but {model} is not in the report")
    return "built" if rc in (0, 1, 130) else "resfam error"


# --- the Python API with odd arguments ----------------------------------------------------------

API_VALUES = [None, 0, -1, 1, 2, 3, 8, 10 ** 12, 2 ** 64, 1.5, float("nan"), float("inf"), True,
              "", "resnet20", "nothing", "digits", "digits:", "/dev/null", "x.yaml", [], ["resnet20"],
              [None], {}, {"name": 3}, ("resnet20", "plain20")]
API_CALLS = ("compare", "probe", "prepare_finetune", "optimize_for_inference", "get_spec",
             "list_models", "convert_state_dict", "load_pretrained", "data_config", "train")


def api_case(rng: random.Random) -> dict:
    pick = lambda: copy.deepcopy(rng.choice(API_VALUES))  # noqa: E731
    return {"call": rng.choice(API_CALLS), "a": pick(), "b": pick(), "c": pick(),
            "valid": rng.random() < 0.3}


def _run_api(case: dict, folder: str) -> str:
    import torch

    import resfam

    a, b, c, call = case["a"], case["b"], case["c"], case["call"]
    if call == "compare":
        models = ["resnet20", "plain20"] if case["valid"] else a
        rows = resfam.compare(models, batch_size=b if isinstance(b, int) and not case["valid"] else 1,
                              workers=1 if case["valid"] else c)
        asked = [models] if isinstance(models, str) else list(models)
        if len(rows) != len(asked):
            raise SilentAcceptance(f"compare({models!r}) gave {len(rows)} rows")
    elif call == "probe":
        result = resfam.probe("resnet20" if case["valid"] else a, batch_size=2 if case["valid"] else b,
                              img_size=8 if case["valid"] else c)
        if not result.blocks:
            raise SilentAcceptance("a probe without blocks")
    elif call == "prepare_finetune":
        model = resfam.build("resnet20")
        groups = resfam.prepare_finetune(model, "head" if case["valid"] else a,
                                         num_classes=None if case["valid"] else b,
                                         lr=0.1 if case["valid"] else c)
        if not all(p.requires_grad for g in groups for p in g["params"]):
            raise SilentAcceptance("a frozen tensor in a parameter group")
    elif call == "optimize_for_inference":
        model = resfam.build("resnet20") if case["valid"] else a
        fast = resfam.optimize_for_inference(model, fold_bn=True if case["valid"] else bool(b) if b is None else b)
        if case["valid"]:
            x = torch.randn(1, 3, 32, 32)
            if not torch.allclose(fast(x), model.eval()(x), atol=1e-4):
                raise SilentAcceptance("the optimised model computes something else")
    elif call == "get_spec":
        resfam.get_spec(a)
    elif call == "list_models":
        resfam.list_models(a, family=b if isinstance(b, str) else None)
    elif call == "convert_state_dict":
        resfam.convert_state_dict(a if not case["valid"] else resfam.build("resnet20").state_dict(), b)
    elif call == "load_pretrained":
        resfam.load_pretrained(resfam.build("resnet20") if case["valid"] else a, b)
    elif call == "data_config":
        resfam.data_config(resfam.build("resnet20") if case["valid"] else a)
    elif call == "train":  # bad arguments only: a valid study trains for seconds
        resfam.train(a if a not in ("resnet20", ["resnet20"]) else [], seeds=b, epochs=c,
                     data="digits:", out=os.path.join(folder, "study"))
    return "built"


# --- resfam-probe and resfam-train flags --------------------------------------------------------

PROBE_FLAGS = [["--batch-size", "1"], ["--batch-size", "x"], ["--img-size", "4"], ["--img-size", "100000"],
               ["--seed", "-1"], ["--seed", str(2 ** 64)], ["--norm", "nope"], ["--norm", "none"],
               ["--device", "meta"], ["--format", "xml"], ["--format", "csv"], ["--output", "/no/dir/x.csv"],
               ["--plot", "x.jpg"], ["--bogus"], ["--zero-init-last"], ["--batch-size", "2"], ["--img-size", "8"]]
TRAIN_FLAGS = [["--epochs", "0"], ["--epochs", "100000"], ["--seeds", "0"], ["--data", "digits:"],
               ["--data", "nope"], ["--data", "folder:/no/such"], ["--lr", "-1"], ["--lr", "nan"],
               ["--batch-size", "0"], ["--img-size", "4"], ["--img-size", "4096"], ["--out", "/dev/null"],
               ["--schedule", "x"], ["--threads", "0"], ["--norm", "nope"], ["--bogus"], ["--resume"],
               ["--momentum", "1.5"], ["--warmup-epochs", "-1"], ["--finetune", "head"],
               ["--finetune", "all"], ["--pretrained", "/no/such.pth"], ["--pretrained", "timm:nope"],
               ["--test", "a"], ["--test", "resnet20,plain20"], ["--test", "resnet20,nothing"],
               ["--log-every", "-1"], ["--log-every", "3"], ["--backbone-lr-scale", "2"],
               ["--finetune-stages", "0"]]


def probe_cli_case(rng: random.Random) -> dict:
    models = rng.sample(["resnet20", "plain20", "highway20", "nothing*", "x.yaml", "/dev/zero"], rng.randint(1, 2))
    flags = [f for group in rng.sample(PROBE_FLAGS, rng.randint(0, 3)) for f in group]
    return {"argv": models + ["--batch-size", "2", "--img-size", "8"] + flags}


def train_cli_case(rng: random.Random) -> dict:
    models = rng.sample(["resnet20", "plain20", "nothing*", "x.yaml"], rng.randint(1, 2))
    flags = [f for group in rng.sample(TRAIN_FLAGS, rng.randint(1, 3)) for f in group]  # >= 1 odd flag
    return {"argv": models + ["--data", "digits", "--epochs", "1", "--img-size", "8", "--no-plot"] + flags}


def _run_main(main, argv: list, folder: str) -> str:
    """A CLI in-process: usage errors exit 2 with one line, a run 0 or 1; never a traceback."""
    import contextlib
    import io

    argv = [_into(folder, a) for a in argv]
    if "--out" not in argv and main.__name__ == "train_main":
        argv += ["--out", os.path.join(folder, "study")]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's own usage errors
            rc = e.code
    text = err.getvalue()
    if rc not in (0, 1, 2) or "Traceback" in text:
        raise AssertionError(f"exit {rc}: {text[-500:]}")
    return "resfam error" if rc == 2 else "built"


def _run_probe_cli(case: dict, folder: str) -> str:
    from resfam.trainability.cli import probe_main

    return _run_main(probe_main, case["argv"], folder)


def _run_train_cli(case: dict, folder: str) -> str:
    from resfam.trainability.cli import train_main

    return _run_main(train_main, case["argv"], folder)


def space_case(rng: random.Random) -> dict:
    """A bundled design space (resfam.space), mutated: it loads and samples, or fails with one
    resfam error."""
    from resfam.space.definition import SPACES_DIR, list_spaces
    from resfam.spec.loading import read_document

    doc = read_document(str(SPACES_DIR / f"{rng.choice(list_spaces())}.yaml"))["space"]
    return {"space": mutate(doc, rng, rng.randint(1, 3)), "n": rng.randint(1, 3), "seed": rng.randint(0, 9)}


def _run_space(case: dict, folder: str) -> str:
    import resfam
    import resfam.space as rs

    for s in rs.sample(case["space"], case["n"], seed=case["seed"], max_draws=300):
        for d in s.designs:  # every sample a valid spec, under its own name
            name = resfam.get_spec(d.spec).name
            if name != d.name:
                raise AssertionError(f"{d.name}: the spec is named {name}")
    return "built"


GENERATORS.update(output=output_case, api=api_case, probe_cli=probe_cli_case, train_cli=train_cli_case,
                  space=space_case)
RUNNERS = {"output": _run_output, "api": _run_api, "probe_cli": _run_probe_cli,
           "train_cli": _run_train_cli, "space": _run_space}

"""One runner per inference engine: a network and an example input in, a function out that maps
an input of the example's shape to the network's outputs, flattened (a tensor, or each of
``features_only``'s maps in order), as torch tensors on the input's device.

- ``eager``: the network itself.
- ``resfam``: :func:`resfam.optimize_for_inference` with everything it knows on this device:
  BatchNorm folded, standardised weights computed once, channels_last, and on CPU in float32
  oneDNN convolutions with packed weights and fused ReLU (:mod:`resfam.network.onednn`).
- ``compile``: ``torch.compile`` (inductor) of the ``resfam`` path before oneDNN packing, with
  inductor's weight freezing (which packs for oneDNN and fuses itself).
- ``onnxruntime``: ``torch.onnx.export`` (the dynamo exporter) at the example's shape, run by an
  ONNX Runtime CPU session with every graph optimisation on.
- ``openvino``: the same ONNX graph compiled by OpenVINO for its CPU plugin, in float32
  (``INFERENCE_PRECISION_HINT: f32``; OpenVINO's default on a CPU with bfloat16 units is bf16).

ONNX Runtime and OpenVINO run float32 on the CPU only; both get ``torch.get_num_threads()``
threads, as torch has.
"""
from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from contextvars import ContextVar
from typing import Callable, Optional

import torch
from torch import nn

from ..errors import ArgumentError
from .names import ENGINE_NAMES

Runner = Callable[[torch.Tensor], list]


def _flat(out) -> list:
    return list(torch.utils._pytree.tree_leaves(out))


def eager(model: nn.Module, example: torch.Tensor) -> Runner:
    return lambda x: _flat(model(x))


def resfam_path(model: nn.Module, example: torch.Tensor) -> Runner:
    from ..network.inference import optimize_for_inference
    from ..network.onednn import available

    onednn = example.device.type == "cpu" and example.dtype == torch.float32 and available()
    fast = optimize_for_inference(model, onednn=onednn)
    return lambda x: _flat(fast(x))


def compiled(model: nn.Module, example: torch.Tensor) -> Runner:
    """Compiled here, on the example: freezing (constant weights, packed for oneDNN on CPU) is
    read from inductor's config when it compiles, and applies only without autograd."""
    import torch._inductor.config as inductor

    from ..network.inference import optimize_for_inference

    fast = torch.compile(optimize_for_inference(model), dynamic=False)

    def run(x: torch.Tensor) -> list:
        with torch.inference_mode(False), torch.no_grad():  # one grad mode: no recompilation
            return _flat(fast(x))

    with inductor.patch(freezing=True):
        run(example)
    return run


def _cpu_float32(engine: str, example: torch.Tensor) -> None:
    if example.device.type != "cpu":
        raise ArgumentError(f"engine {engine!r} runs on the CPU; the model and input are on "
                            f"{example.device}: move both to the CPU or use engine 'resfam'")
    if example.dtype != torch.float32:
        raise ArgumentError(f"engine {engine!r} runs float32 networks; this one is "
                            f"{str(example.dtype).replace('torch.', '')}: use .float() or engine "
                            "'resfam' / 'eager' (both run float64)")


_EXPORTS: ContextVar[Optional[dict]] = ContextVar("resfam_onnx_exports", default=None)


@contextlib.contextmanager
def one_export():
    """Inside this block ONNX Runtime and OpenVINO share one ONNX export of a network at a shape
    (the exporter takes seconds; both engines read the same graph). Only for code that does not
    change the network between the engines it builds (``deploy('auto')``, ``--engine``)."""
    token = _EXPORTS.set({})
    try:
        yield
    finally:
        _EXPORTS.reset(token)


def _onnx_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    """The network as an ONNX model at the example's shape (weights inside)."""
    memo = _EXPORTS.get()
    key = (id(model), tuple(example.shape), example.dtype)
    if memo is not None and key in memo:
        return memo[key][1]
    data = _export(model, example)
    if memo is not None:
        memo[key] = (model, data)  # (the model held: its id cannot be reused meanwhile)
    return data


def _export(model: nn.Module, example: torch.Tensor) -> bytes:
    import warnings

    with tempfile.TemporaryDirectory(prefix="resfam-onnx-") as folder:
        path = os.path.join(folder, "model.onnx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), path, dynamo=True, verbose=False,
                              external_data=False)
        with open(path, "rb") as f:
            return f.read()


def onnxruntime(model: nn.Module, example: torch.Tensor) -> Runner:
    _cpu_float32("onnxruntime", example)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(_onnx_bytes(model, example), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: [torch.from_numpy(a) for a in session.run(None, {name: x.contiguous().numpy()})]


@functools.lru_cache(maxsize=None)
def _openvino_core():
    """One OpenVINO ``Core`` for the process, as OpenVINO advises. A second ``Core`` created and
    released corrupted the process (OpenVINO 2026.4, torch 2.14): a Ctrl-C later raised during a
    ``torch.load`` segfaulted in torch's GIL acquisition (tests/test_engines.py reproduces it)."""
    import openvino as ov

    return ov.Core()


def openvino(model: nn.Module, example: torch.Tensor) -> Runner:
    _cpu_float32("openvino", example)
    core = _openvino_core()
    graph = core.read_model(_onnx_bytes(model, example), b"")  # ONNX bytes, no separate weights
    compiled_model = core.compile_model(graph, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        "PERFORMANCE_HINT": "LATENCY"})
    request = compiled_model.create_infer_request()
    outputs = compiled_model.outputs

    def run(x: torch.Tensor) -> list:
        result = request.infer(x.contiguous().numpy())
        return [torch.from_numpy(result[o].copy()) for o in outputs]

    return run


RUNNERS = dict(zip(ENGINE_NAMES, (eager, resfam_path, compiled, onnxruntime, openvino)))

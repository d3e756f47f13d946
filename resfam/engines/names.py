"""The engines' names and the packages each needs, without torch (``resfam-compare --help`` and
its argument checks read them before any model library is imported)."""
from __future__ import annotations

import importlib.util

ENGINE_NAMES = ("eager", "resfam", "compile", "onnxruntime", "openvino")
EXTRA = "deploy"  # pip install "resfam[deploy]"
NEEDS = {"onnxruntime": ("onnxruntime", "onnx", "onnxscript"),
         "openvino": ("openvino", "onnx", "onnxscript")}


def missing(engine: str) -> list[str]:
    """The modules ``engine`` needs that are not installed."""
    return [m for m in NEEDS.get(engine, ()) if importlib.util.find_spec(m) is None]

"""Inference engines: ``resfam.deploy(model, engine=...)`` runs a network on eager PyTorch,
resfam's own fast path, ``torch.compile``, ONNX Runtime or OpenVINO (or the fastest of them
here, ``auto``), checked against eager; ``ceiling`` measures what dense kernels reach on this
machine, the yardstick ``resfam-compare --engine`` reports GFLOP/s against."""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "ENGINES": ".deployment", "Deployed": ".deployment", "EngineError": ".deployment", "deploy": ".deployment",
    "installed": ".deployment", "measured_ceiling": ".ceiling"})

__all__ = ["ENGINES", "Deployed", "EngineError", "deploy", "installed", "measured_ceiling"]

"""resfam: the ResNet family built from YAML block specs.

    >>> import resfam
    >>> m = resfam.build("resnext50_32x4d")
    >>> resfam.list_models("res2net*")[:2]
    ['res2net101_26w_4s', 'res2net50_14w_8s']

The public API, gathered from the layers below it (docs/architecture.md): errors, primitives,
spec, network, weights, ``factory`` (build), and the uses (comparison, trainability,
integrations). Each loads on first use (:mod:`resfam._lazy`): ``import resfam`` alone imports
neither torch nor timm.
"""
from . import _moved
from ._lazy import lazy_exports
from ._version import __version__
from .integrations import timm_registry as _timm_registry

__getattr__, __dir__ = lazy_exports(__name__, {
    "compare": ".comparison",
    "ArgumentError": ".errors", "BuildArgumentError": ".errors", "CheckpointError": ".errors",
    "ResfamError": ".errors", "SpecError": ".errors", "UnknownModelError": ".errors",
    "build": ".factory", "deploy": ".engines.deployment", "list_models": ".factory",
    "ResFamNet": ".network",
    "optimize_for_inference": ".network.inference",
    "data_config": ".network.preprocessing",
    "freeze_batch_norm": ".primitives.norms",
    "Spec": ".spec", "get_spec": ".spec", "list_families": ".spec",
    "prepare_finetune": ".trainability.finetune",
    "probe": ".trainability.probe",
    "train": ".trainability.train",
    "LoadReport": ".weights.checkpoint", "load_pretrained": ".weights.checkpoint",
    "convert_state_dict": ".weights.convert",
    "list_pretrained": ".weights.hub",
}, modules={"detection": ".integrations.torchvision"})  # resfam.detection.torchvision_fpn_backbone

_moved.install()  # an old module path fails with one line naming the new one; resfam.detection
# (README's detectors) is resfam.integrations.torchvision
_timm_registry.register_when_imported()  # timm.create_model("resfam_<variant>"), once timm is in

__all__ = ["ArgumentError", "BuildArgumentError", "CheckpointError", "LoadReport", "ResFamNet",
           "ResfamError", "Spec", "SpecError", "UnknownModelError", "__version__", "build",
           "compare", "convert_state_dict", "data_config", "deploy", "detection", "freeze_batch_norm",
           "get_spec", "list_families", "list_models", "list_pretrained", "load_pretrained",
           "optimize_for_inference", "prepare_finetune", "probe", "train"]

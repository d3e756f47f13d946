"""resfam: the ResNet family built from YAML block specs.

    >>> import resfam
    >>> m = resfam.build("resnext50_32x4d")
    >>> resfam.list_models("res2net*")[:2]
    ['res2net101_26w_4s', 'res2net50_14w_8s']

The public API, gathered from the layers below it (docs/architecture.md): errors, primitives,
spec, network, weights, ``factory`` (build), and the uses (comparison, trainability,
integrations).
"""
import sys as _sys

from . import _moved
from ._version import __version__
from .comparison import compare
from .errors import (ArgumentError, BuildArgumentError, CheckpointError, ResfamError, SpecError,
                     UnknownModelError)
from .factory import build, list_models
from .integrations import timm_registry as _timm_registry
from .integrations import torchvision as detection  # resfam.detection.torchvision_fpn_backbone
from .network import ResFamNet
from .network.inference import optimize_for_inference
from .network.preprocessing import data_config
from .primitives.norms import freeze_batch_norm
from .spec import Spec, get_spec, list_families
from .trainability.finetune import prepare_finetune
from .trainability.probe import probe
from .trainability.train import train
from .weights.checkpoint import LoadReport, load_pretrained
from .weights.convert import convert_state_dict
from .weights.hub import list_pretrained

_moved.install()  # an old module path fails with one line naming the new one
_sys.modules.setdefault("resfam.detection", detection)  # `import resfam.detection` keeps working
_timm_registry.register()  # timm.create_model("resfam_<variant>")

__all__ = ["ArgumentError", "BuildArgumentError", "CheckpointError", "LoadReport", "ResFamNet",
           "ResfamError", "Spec", "SpecError", "UnknownModelError", "__version__", "build",
           "compare", "convert_state_dict", "data_config", "detection", "freeze_batch_norm",
           "get_spec", "list_families", "list_models", "list_pretrained", "load_pretrained",
           "optimize_for_inference", "prepare_finetune", "probe", "train"]

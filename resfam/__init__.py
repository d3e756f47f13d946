"""resfam: the ResNet family built from YAML block specs.

    >>> import resfam
    >>> m = resfam.build("resnext50_32x4d")
    >>> resfam.list_models("res2net*")[:2]
    ['res2net101_26w_4s', 'res2net50_14w_8s']
"""
from .compare import compare
from .convert import convert_state_dict
from .errors import (ArgumentError, BuildArgumentError, CheckpointError, ResfamError, SpecError,
                     UnknownModelError)
from .factory import build
from .finetune import prepare_finetune
from .hub import data_config, list_pretrained
from .inference import optimize_for_inference
from .network import ResFamNet
from .norms import freeze_batch_norm
from .pretrained import LoadReport, load_pretrained
from .registry import get_spec, list_families, list_models
from .spec import Spec
from .trainability.probe import probe
from .trainability.train import train
from . import detection  # noqa: E402  (resfam.detection.torchvision_fpn_backbone)
from .integrations import timm_registry as _timm_registry

_timm_registry.register()  # timm.create_model("resfam_<variant>")

__version__ = "0.1.0"

__all__ = ["ArgumentError", "BuildArgumentError", "CheckpointError", "LoadReport", "ResFamNet", "ResfamError", "Spec",
           "SpecError", "UnknownModelError", "build", "compare", "convert_state_dict", "detection",
           "data_config", "freeze_batch_norm", "get_spec", "list_families", "list_models",
           "list_pretrained", "load_pretrained",
           "optimize_for_inference", "prepare_finetune", "probe", "train"]

"""What a network's input should look like: the preprocessing keys timm's data pipeline reads
(``pretrained_cfg``: mean, std, input size, crop). A build carries ImageNet's defaults; a build
with published weights carries the weights' own (:mod:`resfam.weights.hub`)."""
from __future__ import annotations

from ..errors import ArgumentError

# one float32 input batch; a larger one is refused before it is made (activations are larger still)
MAX_INPUT_BYTES = 2 * 2 ** 30


def input_bytes(batch_size: int, img_size: int | None, channels: int = 3) -> int:
    """Bytes of one float32 input batch (``img_size`` None: the ImageNet nets' 224)."""
    return batch_size * channels * (img_size or 224) ** 2 * 4


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # timm's defaults


def default_cfg(input_size: int, num_classes: int, in_chans: int = 3) -> dict:
    """What a build without published weights carries: ImageNet statistics and timm's default
    crop (``timm.data.IMAGENET_DEFAULT_MEAN`` / ``_STD``, crop_pct 0.875)."""
    return dict(source=None, tag=None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                input_size=(in_chans, input_size, input_size), crop_pct=0.875, crop_mode="center",
                interpolation="bilinear", num_classes=num_classes, license=None)


def data_config(model) -> dict:
    """The preprocessing a resfam model's weights expect, as ``timm.data.create_transform(**cfg)``
    takes it (input_size, interpolation, mean, std, crop_pct, crop_mode). Where the model takes
    another number of input channels than the weights' statistics, the mean and std are averaged
    over them and repeated."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "mean" not in cfg:
        raise ArgumentError(f"data_config expects a resfam model (resfam.build), got "
                            f"{type(model).__name__}")
    chans = getattr(model, "in_chans", len(cfg["mean"]))
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if len(mean) != chans:
        mean, std = (sum(mean) / len(mean),) * chans, (sum(std) / len(std),) * chans
    return dict(input_size=(chans, *tuple(cfg["input_size"])[1:]), interpolation=cfg["interpolation"],
                mean=mean, std=std, crop_pct=cfg["crop_pct"], crop_mode=cfg.get("crop_mode", "center"))

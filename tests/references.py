"""Independent reference networks, for the builds no installed library makes.

Each is written from its paper and from reading the official code (never copied from it, and
sharing no code with resfam), so that a resfam build can be held against it weight for weight.
The semantics each official implementation gets from in-place operations are spelled out here
as plain assignments, so the reference says what it computes.

- :class:`OfficialIResNet`: iResNet (Duta et al. 2020) as ``iduta/iresnet`` ``models/iresnet.py``
  computes it: ResStage start / middle / end blocks (Fig. 2), improved projection shortcut
  (Fig. 4), no stem max-pool. The official blocks use ``ReLU(inplace=True)``; the block right
  after a stage's start block has no leading BN, so its ReLU rewrites the block input after
  ``identity = x`` was taken: the identity it adds is ``relu(x)``. The official key names are
  used (an end block's post-add norm is ``bn3``), so ``resfam.convert_state_dict`` is tested too.
- :class:`PreActCifarResNet`: the pre-activation bottleneck CIFAR ResNet-(9n+2) (He et al.
  2016b, Fig. 1(b), Table 3) as ``KaimingHe/resnet-1k-layers`` ``resnet-pre-act.lua`` builds it:
  a unit that changes the shape pre-activates once for both paths and projects with a strided
  1x1 conv without BN; the bottleneck strides on its *first 1x1* conv; no conv has a bias.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class _IResBottleneck(nn.Module):
    """kind: 'start' | 'middle' | 'end'; lead_bn: a BN before the first ReLU (every block but
    the start block and the one right after it)."""

    def __init__(self, cin: int, planes: int, stride: int, kind: str, lead_bn: bool,
                 downsample: nn.Module | None):
        super().__init__()
        cout = planes * 4
        self.kind, self.lead_bn = kind, lead_bn
        if kind != "start" and lead_bn:
            self.bn0 = nn.BatchNorm2d(cin)
        self.conv1, self.bn1 = _conv(cin, planes, 1), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, cout, 1)
        if kind in ("start", "end"):
            self.bn3 = nn.BatchNorm2d(cout)  # start: on the branch; end: after the add
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "start":
            h = x
        elif self.lead_bn:
            h = F.relu(self.bn0(x))
        else:
            x = F.relu(x)  # the official in-place ReLU: the identity below is relu(x) too
            h = x
        h = F.relu(self.bn1(self.conv1(h)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.conv3(h)
        if self.kind == "start":
            h = self.bn3(h)
        y = h + (x if self.downsample is None else self.downsample(x))
        if self.kind == "end":
            y = F.relu(self.bn3(y))
        return y


class OfficialIResNet(nn.Module):
    """iResNet with bottleneck blocks; ``depths`` blocks per stage (each >= 2)."""

    def __init__(self, depths=(3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        cin = 64
        for i, (n, planes) in enumerate(zip(depths, (64, 128, 256, 512)), start=1):
            cout, stride = planes * 4, 2
            if cin != cout:  # stride 2 in every stage: max-pool, 1x1, BN
                down = nn.Sequential(nn.MaxPool2d(3, stride, 1), _conv(cin, cout, 1), nn.BatchNorm2d(cout))
            else:
                down = nn.MaxPool2d(3, stride, 1)
            blocks = [_IResBottleneck(cin, planes, stride, "start", False, down)]
            blocks += [_IResBottleneck(cout, planes, 1, "middle", j > 1, None) for j in range(1, n - 1)]
            blocks.append(_IResBottleneck(cout, planes, 1, "end", n > 2, None))
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            cin = cout
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _PreActUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        mid = cout // 4
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1, self.bn1 = _conv(cin, mid, 1, stride), nn.BatchNorm2d(mid)  # strides here
        self.conv2, self.bn2 = _conv(mid, mid, 3), nn.BatchNorm2d(mid)
        self.conv3 = _conv(mid, cout, 1)
        self.downsample = _conv(cin, cout, 1, stride) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn0(x))
        h = self.conv1(a)
        h = self.conv2(F.relu(self.bn1(h)))
        h = self.conv3(F.relu(self.bn2(h)))
        return h + (x if self.downsample is None else self.downsample(a))


class PreActCifarResNet(nn.Module):
    """Pre-activation bottleneck ResNet-(9n+2) for CIFAR: widths 16 | 64, 128, 256."""

    def __init__(self, depth: int = 164, num_classes: int = 10):
        super().__init__()
        n = (depth - 2) // 9
        self.conv1 = _conv(3, 16, 3)
        cin = 16
        for i, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2)), start=1):
            units = [_PreActUnit(cin, cout, stride)] + [_PreActUnit(cout, cout, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*units))
            cin = cout
        self.norm = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.norm(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

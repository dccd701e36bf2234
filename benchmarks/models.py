"""The real-size networks of the benchmarks, in PyTorch (random init, eval mode, no batch-norm).

* ``resnet18(width)``: the CIFAR layout of ResNet-18 (He et al. 2016; the "deep networks always grok" runs use
  width 16): a 3x3 stem conv, four stages of two basic blocks (3x3 conv, relu, 3x3 conv, + skip, relu) with
  widths w, 2w, 4w, 8w and strides 1, 2, 2, 2 (1x1 strided convs on the skips), global average pooling, a
  linear classifier; input 3 x 32 x 32. Width 16: 700k parameters, 139k ReLU units.
* ``vgg11(widths)``: VGG-11's layout of 3x3 convs and 2x2 max-pools (SplineCam slices VGG-11/16), narrowed:
  conv widths c, M, 2c, M, 4c, 4c, M, 8c, 8c, M, 8c, 8c, M then two linear layers; input 3 x 32 x 32.
"""
from __future__ import annotations


def _torch():
    import torch
    from torch import nn

    return torch, nn


def resnet18(width: int = 16, n_classes: int = 10, seed: int = 0):
    torch, nn = _torch()

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=True)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=True)
            self.skip = nn.Conv2d(cin, cout, 1, stride, 0, bias=True) if (stride != 1 or cin != cout) else None

        def forward(self, x):
            h = self.c2(torch.relu(self.c1(x)))
            s = x if self.skip is None else self.skip(x)
            return torch.relu(h + s)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.stem = nn.Conv2d(3, w, 3, 1, 1, bias=True)
            layers, cin = [], w
            for cout, stride in ((w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)):
                layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
                cin = cout
            self.layers = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, n_classes)

        def forward(self, x):
            h = self.layers(torch.relu(self.stem(x)))
            return self.fc(torch.flatten(self.pool(h), 1))

    torch.manual_seed(seed)
    return ResNet().eval()


def vgg11(width: int = 16, n_classes: int = 10, seed: int = 0):
    torch, nn = _torch()
    c = width
    cfg = [c, "M", 2 * c, "M", 4 * c, 4 * c, "M", 8 * c, 8 * c, "M", 8 * c, 8 * c, "M"]
    torch.manual_seed(seed)  # before the layers are built (their init draws from it)
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, 1, 1), nn.ReLU()]
            cin = v
    layers += [nn.Flatten(), nn.Linear(cin, 8 * c), nn.ReLU(), nn.Linear(8 * c, n_classes)]
    return nn.Sequential(*layers).eval()


def plane_around(x, radius: float, seed: int = 0):
    """The library's square slice of half-side ``radius`` around the flattened input x
    (:func:`piecewise.planes.plane_around`; the same directions for the same seed)."""
    from piecewise.planes import plane_around as around

    return around(x, radius, seed)

"""rotate / hflip / vflip: the three functions Topaz imports, written on plain torch."""

import math

import torch
from torch.nn import functional as F


def hflip(image: torch.Tensor) -> torch.Tensor:
    return image.flip(-1)


def vflip(image: torch.Tensor) -> torch.Tensor:
    return image.flip(-2)


def rotate(image: torch.Tensor, angle: float, *args, **kwargs) -> torch.Tensor:
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    radians = math.radians(float(angle))
    cos, sin = math.cos(radians), math.sin(radians)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype).expand(
        x.shape[0], 2, 3
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False)
    return out.reshape(image.shape)

"""Running BoxNet over a whole micrograph: padding, tiling with overlap, stitching."""

from __future__ import annotations

import numpy as np
import torch

from boxnet_tui.errors import UserError
from boxnet_tui.model.network import BoxNet

DEFAULT_TILE = 1024  # px at 8 Å/px: a 4096² micrograph at 1.77 Å/px (906²) is one tile
DEFAULT_OVERLAP = 64


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:K`` (GPU K of those
    this process sees: ``CUDA_VISIBLE_DEVICES`` renumbers them from 0), ``mps``.

    Raises:
        UserError: a name torch does not know, or a device this machine does not have.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(
            f"device {device!r}: give auto, cpu, cuda, cuda:K (K from 0) or mps"
        ) from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"device {device}: no CUDA GPU visible here (use --device cpu)")
        if resolved.index is not None and resolved.index >= count:
            raise UserError(
                f"device {device}: this process sees {count} GPU{'s' if count > 1 else ''} "
                f"(cuda:0 to cuda:{count - 1}; CUDA_VISIBLE_DEVICES renumbers them from 0)"
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {device}: no Apple GPU (MPS) here (use --device cpu)")
    elif resolved.type not in ("cpu", "mps"):
        raise UserError(f"device {device!r}: give auto, cpu, cuda, cuda:K (K from 0) or mps")
    return resolved


def _round_up(n: int, divisor: int) -> int:
    return -(-n // divisor) * divisor


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - 2 * overlap
    starts = [*range(0, length - tile, step), length - tile]
    return sorted(set(starts))


@torch.inference_mode()
def predict_probabilities(
    network: BoxNet,
    image: np.ndarray,
    *,
    device: torch.device | str = "cpu",
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 4,
) -> np.ndarray:
    """Softmax probabilities (3, H, W) for a prepared 8 Å/px image.

    Images larger than ``tile`` are cut into tiles that overlap by ``2 * overlap``; each output
    pixel is taken from the tile whose centre is nearest (its margin is dropped), so the seams
    carry no edge effects. Inputs are reflect-padded to a multiple of the network's divisor.
    """
    device = torch.device(device)
    divisor = network.architecture.divisor
    height, width = image.shape
    tile_y = _round_up(min(tile, height), divisor)
    tile_x = _round_up(min(tile, width), divisor)
    pad_y, pad_x = max(0, tile_y - height), max(0, tile_x - width)
    padded = np.pad(image, ((0, pad_y), (0, pad_x)), mode="reflect") if pad_y or pad_x else image
    full_y, full_x = padded.shape
    out = np.zeros((3, full_y, full_x), np.float32)
    windows = [
        (y, x) for y in _starts(full_y, tile_y, overlap) for x in _starts(full_x, tile_x, overlap)
    ]
    source = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))
    for first in range(0, len(windows), batch_size):
        batch = windows[first : first + batch_size]
        stack = torch.stack([source[y : y + tile_y, x : x + tile_x] for y, x in batch])[:, None]
        logits = network(stack.to(device, non_blocking=True))
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        for (y, x), prob in zip(batch, probs, strict=True):
            # keep the part of this tile nearest its centre: drop the overlap margin except at
            # the image edge
            top = 0 if y == 0 else overlap
            left = 0 if x == 0 else overlap
            bottom = tile_y if y + tile_y >= full_y else tile_y - overlap
            right = tile_x if x + tile_x >= full_x else tile_x - overlap
            out[:, y + top : y + bottom, x + left : x + right] = prob[:, top:bottom, left:right]
    return out[:, :height, :width]

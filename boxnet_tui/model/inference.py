"""Running BoxNet over a whole micrograph: padding, tiling with overlap, stitching."""

from __future__ import annotations

import numpy as np
import torch

from boxnet_tui.errors import UserError
from boxnet_tui.model.network import BoxNet

DEFAULT_TILE = 1280  # px of the network's input a side in one pass; larger inputs are tiled
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


def tiling(length: int, tile: int, overlap: int, divisor: int) -> tuple[int, list[int]]:
    """``(size, starts)``: the fewest equal tiles of about ``tile`` px (a multiple of the
    network's divisor) that cover ``length`` px, their kept parts (``overlap`` px dropped at
    each inner edge) meeting without a gap.

    Equal tiles, not full tiles plus a remainder: an image just over ``tile`` px wide then costs
    two half-size tiles a row, not two full ones (four times the work for 1068² at 1024).
    """
    if length > tile and tile < 2 * overlap + divisor:
        raise ValueError(f"a tile of {tile} px keeps nothing of an overlap of {overlap} px")
    inner = length - 2 * overlap
    count = -(-inner // (tile - 2 * overlap)) if length > tile else 1
    if count > 1:
        # tiles start on the divisor's grid (the strided layers then see the same phase as a
        # whole-image pass), the last one ends at the image's edge
        stride = _round_up(-(-inner // count), divisor)
        size = stride + _round_up(2 * overlap, divisor)
        if size < length:
            last = length - size
            return size, sorted({*(min(i * stride, last) for i in range(count - 1)), last})
    return _round_up(length, divisor), [0]  # one tile, the image padded to it


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
    (tile_y, starts_y), (tile_x, starts_x) = (
        tiling(n, tile, overlap, divisor) for n in (height, width)
    )
    full_y, full_x = max(height, tile_y), max(width, tile_x)
    pad_y, pad_x = full_y - height, full_x - width
    padded = np.pad(image, ((0, pad_y), (0, pad_x)), mode="reflect") if pad_y or pad_x else image
    out = np.zeros((3, full_y, full_x), np.float32)
    windows = [(y, x) for y in starts_y for x in starts_x]
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

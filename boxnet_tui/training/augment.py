"""Random training crops with Warp's augmentation (a narrower size change), done as one
batched affine resampling.

Each crop: a random centre, rotation 0–2π, anisotropic scale 1 ± ``RETRAIN_SIZE_JITTER``
(0.9–1.1; Warp's is 0.8–1.2) or, with ``size_range``, an isotropic size change log-uniform in
that range times 0.9–1.1 per axis, a
random flip (free and harmless), then intensity scale/offset and Gaussian noise on the image.
The image is resampled bilinearly; labels and importance by nearest neighbour so classes stay crisp.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from boxnet_tui.training.labels import Example

# Retraining scales each crop axis by 1 ± this. Warp's ±0.2 lets a model retrained on one
# protein take objects a fifth smaller or larger for it; ±0.1 measured better on the ribosome
# never seen (0.871 against 0.865 over three seeds) and the same on beta-galactosidase (0.875
# against 0.875): README, "Where the retrained ribosome loses".
RETRAIN_SIZE_JITTER = 0.1


def sample_batch(
    examples: list[Example],
    batch_size: int,
    crop: int,
    rng: np.random.Generator,
    *,
    augment: bool = True,
    particle_fraction: float = 0.0,
    size_range: tuple[float, float] | None = None,
    mosaic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image (B,1,S,S) float, label (B,S,S) long, importance (B,S,S) float) crops.

    Args:
        particle_fraction: share of crops centred near a random particle pixel, so sparse
            micrographs still give the network particles to see.
        size_range: (smallest, largest) factor by which particles may look smaller or larger
            than in the example (None: 1 ± ``RETRAIN_SIZE_JITTER`` per axis); the generic
            recipe widens it so a diameter stated a third too large or too small still finds
            the particles.
        mosaic: each crop's quadrants then shuffled across the batch (:func:`mosaic_quadrants`).
    """
    images, labels, weights = [], [], []
    for _ in range(batch_size):
        example = examples[int(rng.integers(len(examples)))]
        height, width = example.image.shape
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        if particle_fraction and rng.random() < particle_fraction:
            ys, xs = np.nonzero(example.label == 1)
            if ys.size:
                pick = int(rng.integers(ys.size))
                cy = ys[pick] + rng.uniform(-crop / 3, crop / 3)
                cx = xs[pick] + rng.uniform(-crop / 3, crop / 3)
        angle = rng.uniform(0, 2 * math.pi) if augment else 0.0
        if not augment:
            sx, sy = 1.0, 1.0
        elif size_range is None:
            sx, sy = rng.uniform(1 - RETRAIN_SIZE_JITTER, 1 + RETRAIN_SIZE_JITTER, size=2)
        else:
            # crop pixels per input pixel: > 1 shows more micrograph, so particles look smaller
            size = math.exp(rng.uniform(math.log(size_range[0]), math.log(size_range[1])))
            sx, sy = rng.uniform(0.9, 1.1, size=2) / size
        flip = -1.0 if augment and rng.random() < 0.5 else 1.0
        cos, sin = math.cos(angle), math.sin(angle)
        # output pixel offsets (crop coordinates) -> input pixel offsets
        matrix = np.array([[cos * sx * flip, -sin * sy], [sin * sx * flip, cos * sy]])
        image, rest = crop_example(example, matrix, cx, cy, crop)
        # outside the micrograph: zero image, background label, zero importance (not learnt)
        if augment:
            image = image * rng.uniform(0.8, 1.25) + rng.uniform(-0.2, 0.2)
            image = image + torch.randn_like(image) * rng.uniform(0.0, 0.3)
        images.append(image[0])
        labels.append(rest[0, 0].round().long())
        weights.append(rest[0, 1])
    batch = torch.stack(images), torch.stack(labels), torch.stack(weights)
    return mosaic_quadrants(*batch, rng) if mosaic else batch


def mosaic_quadrants(
    image: torch.Tensor, label: torch.Tensor, importance: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch with each crop's top-right, bottom-left and bottom-right quadrants taken from
    crops of the batch drawn at random (a permutation for each quadrant; the top-left kept).

    Why: a model retrained on a few micrographs sees a particle's whole neighbourhood (the
    network's view spans about 8 diameters) and learns their layout too; pieced together from
    unrelated crops, the neighbourhood stops predicting the particle (the ribosome never seen:
    README, "Where the retrained ribosome loses").
    """
    image, label, importance = image.clone(), label.clone(), importance.clone()
    half_y, half_x = image.shape[-2] // 2, image.shape[-1] // 2
    for rows, cols in (
        (slice(0, half_y), slice(half_x, None)),
        (slice(half_y, None), slice(0, half_x)),
        (slice(half_y, None), slice(half_x, None)),
    ):
        order = torch.from_numpy(rng.permutation(image.shape[0]))
        for tensor in (image, label, importance):
            tensor[..., rows, cols] = tensor[order][..., rows, cols]
    return image, label, importance


def crop_window(
    example: Example, matrix: np.ndarray, cx: float, cy: float, crop: int
) -> tuple[slice, slice]:
    """The rows and columns of ``example`` that a crop centred at (cx, cy) with ``matrix`` can
    sample (two pixels to spare for bilinear interpolation), clipped to the example; never
    empty."""
    height, width = example.image.shape
    spans = []
    for centre, row, size in ((cy, matrix[1], height), (cx, matrix[0], width)):
        half = (abs(row[0]) + abs(row[1])) * crop / 2 + 2
        first = min(max(0, math.floor(centre - 0.5 - half)), size - 1)
        last = max(min(size, math.ceil(centre - 0.5 + half) + 1), first + 1)
        spans.append(slice(first, last))
    return spans[0], spans[1]


def crop_example(
    example: Example, matrix: np.ndarray, cx: float, cy: float, crop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image (1,1,S,S), label and importance (1,2,S,S)): the crop whose pixel offsets map to
    ``matrix`` @ offset around (cx, cy) in the example, image bilinear, the rest nearest.

    Only the window the crop reaches is copied and resampled (the same values as resampling
    the whole example: a crop of 256 px reaches at most about 450 px a side of a 1068² one).
    """
    rows, cols = crop_window(example, matrix, cx, cy, crop)
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    grid = crop_grid(matrix, cx - cols.start, cy - rows.start, crop, shape)
    stack = torch.from_numpy(
        np.stack(
            [
                example.image[rows, cols],
                example.label[rows, cols].astype(np.float32),
                example.importance[rows, cols],
            ]
        )
    )[None]
    image = F.grid_sample(stack[:, :1], grid, mode="bilinear", align_corners=False)
    rest = F.grid_sample(stack[:, 1:], grid, mode="nearest", align_corners=False)
    return image, rest


def crop_grid(
    matrix: np.ndarray, cx: float, cy: float, crop: int, shape: tuple[int, int]
) -> torch.Tensor:
    """The ``grid_sample`` grid (1, S, S, 2) of a crop centred at (cx, cy) of an image of
    ``shape``, whose pixel offsets map to ``matrix`` @ offset there."""
    height, width = shape
    theta = torch.tensor(
        [
            [matrix[0, 0] * crop / width, matrix[0, 1] * crop / width, 2 * cx / width - 1],
            [matrix[1, 0] * crop / height, matrix[1, 1] * crop / height, 2 * cy / height - 1],
        ],
        dtype=torch.float32,
    )[None]
    return F.affine_grid(theta, [1, 1, crop, crop], align_corners=False)

"""The training loop: weighted per-pixel cross-entropy on augmented crops, 1:1 dilution.

Loss = cross-entropy × class weight × importance, averaged over the crop. With an "old"
(public) example set, Warp's 1:1 dilution is kept, but inside each batch (half new, half old)
rather than in alternating batches: with batch norm, single-source batches train the network
on statistics that differ from the mixed running statistics it sees at inference, which broke
picking on one of the two sources in our measurements. The running mean of each half's loss
is what the "new" and "old" loss curves show.

Under torchrun (``WORLD_SIZE`` > 1) the network is wrapped in DistributedDataParallel, each
rank draws its share of every batch from its own random stream (seed + rank), and the logged
losses are averaged over the ranks (see :mod:`boxnet_tui.training.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from boxnet_tui.model.network import BoxNet, place
from boxnet_tui.training import distributed
from boxnet_tui.training.augment import sample_batch
from boxnet_tui.training.labels import Example, class_weights


@dataclass
class TrainConfig:
    iterations: int = 1000
    batch_size: int = 8
    crop: int = 256
    optimizer: str = "adamw"  # or "sgd" (Warp: momentum 0.9)
    lr: float = 1e-3
    lr_end: float = 1e-5
    weight_decay: float = 1e-4
    seed: int = 0
    log_every: int = 10
    particle_fraction: float = 0.3
    size_range: tuple[float, float] | None = None  # None: retraining's ±10 % (augment)
    mosaic: bool = True  # retraining's quadrant shuffle (augment.mosaic_quadrants); generic: off


@dataclass
class LogLine:
    iteration: int
    loss_new: float
    loss_old: float | None
    lr: float
    time: float


def _weight_sample(examples: Sequence[Example], most: int = 64) -> list[Example]:
    """Up to ``most`` evenly spaced examples: class counts of a large public set, cheaply."""
    if len(examples) <= most:
        return list(examples)
    step = len(examples) / most
    return [examples[int(i * step)] for i in range(most)]


def weighted_loss(
    logits: torch.Tensor, label: torch.Tensor, importance: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    per_pixel = F.cross_entropy(logits.float(), label, weight=weights, reduction="none")
    return (per_pixel * importance).mean()


def make_optimizer(network: BoxNet, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            network.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def learning_rate(config: TrainConfig, iteration: int) -> float:
    """Cosine from ``lr`` to ``lr_end`` over the run."""
    progress = min(1.0, iteration / max(1, config.iterations))
    return config.lr_end + 0.5 * (config.lr - config.lr_end) * (1 + math.cos(math.pi * progress))


def train(
    network: BoxNet,
    new: Sequence[Example],
    old: Sequence[Example] | None,
    config: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    start_iteration: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    rng: np.random.Generator | None = None,
    weights: np.ndarray | None = None,
    scaler: torch.amp.GradScaler | None = None,
    on_log: Callable[[LogLine], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_stop: Callable[[int], None] | None = None,
) -> BoxNet:
    """Train ``network`` in place from ``start_iteration`` to ``config.iterations``.

    Args:
        device: under torchrun a CUDA device becomes ``cuda:LOCAL_RANK``.
        rng: the sampling stream; default seeded with ``config.seed`` + rank.
        weights: class weights; default from ``new`` and a sample of ``old``.
        scaler: the CUDA mixed-precision scaler, to carry its state across a resume.
        on_log: called on every rank at each log step, with losses averaged over the ranks
            (a caller that writes files does so on rank 0 only).
        should_stop: asked before each iteration; under torchrun a stop on any rank stops all.
        on_stop: told the number of completed iterations when ``should_stop`` ends the run
            early (on every rank).
    """
    world, device = distributed.setup(device)
    place(network, device).train()
    model = distributed.wrap(network, device, world)
    optimizer = optimizer or make_optimizer(network, config)
    # each rank its own stream: the same seed would give every rank the same crops
    rng = rng or np.random.default_rng(config.seed + world.rank)
    if weights is None:
        weights = class_weights(list(new) + _weight_sample(old or []))
    weight_tensor = torch.from_numpy(np.asarray(weights, np.float32)).to(device)
    use_amp = device.type == "cuda"
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=use_amp)
    running: dict[str, list[float]] = {"new": [], "old": []}
    share = distributed.batch_share(config.batch_size, world, minimum=2 if old else 1)
    n_new = share // 2 if old else share
    start = time.perf_counter()
    for iteration in range(start_iteration, config.iterations):
        stop = should_stop is not None and should_stop()
        if distributed.any_rank(stop, world):  # every rank stops at the same iteration
            if on_stop is not None:
                on_stop(iteration)
            break
        parts = [
            sample_batch(
                new,
                n_new,
                config.crop,
                rng,
                particle_fraction=config.particle_fraction,
                size_range=config.size_range,
                mosaic=config.mosaic,
            )
        ]
        if old:
            parts.append(
                sample_batch(
                    old,
                    share - n_new,
                    config.crop,
                    rng,
                    particle_fraction=config.particle_fraction,
                    size_range=config.size_range,
                    mosaic=config.mosaic,
                )
            )
        image, label, importance = (torch.cat(tensors) for tensors in zip(*parts, strict=True))
        lr = learning_rate(config, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, enabled=use_amp):
            logits = model(image.to(device))
        label, importance = label.to(device), importance.to(device)
        loss_new = weighted_loss(logits[:n_new], label[:n_new], importance[:n_new], weight_tensor)
        loss = loss_new
        if old:
            loss_old = weighted_loss(
                logits[n_new:], label[n_new:], importance[n_new:], weight_tensor
            )
            loss = 0.5 * (loss_new + loss_old)
            running["old"].append(float(loss_old.detach()))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        running["new"].append(float(loss_new.detach()))
        done = iteration + 1
        if on_log is not None and (done % config.log_every == 0 or done == config.iterations):
            mean_new = float(np.mean(running["new"][-config.log_every :]))
            mean_old = float(np.mean(running["old"][-config.log_every :])) if old else math.nan
            mean_new, mean_old = distributed.mean_over_ranks([mean_new, mean_old], world)
            line = LogLine(
                done,
                mean_new,
                mean_old if old else None,
                lr,
                time.perf_counter() - start,
            )
            on_log(line)
    network.eval()
    return network

"""The training loop: weighted per-pixel cross-entropy on augmented crops, 1:1 dilution.

Loss = cross-entropy × class weight × importance, averaged over the crop. With an "old"
(public) example set, Warp's 1:1 dilution is kept, but inside each batch (half new, half old)
rather than in alternating batches: with batch norm, single-source batches train the network
on statistics that differ from the mixed running statistics it sees at inference, which broke
picking on one of the two sources in our measurements. The running mean of each half's loss
is what the "new" and "old" loss curves show.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from boxnet_tui.model.network import BoxNet
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
) -> BoxNet:
    """Train ``network`` in place from ``start_iteration`` to ``config.iterations``.

    Args:
        weights: class weights; default from ``new`` and a sample of ``old``.
        scaler: the CUDA mixed-precision scaler, to carry its state across a resume.
    """
    device = torch.device(device)
    network.to(device).train()
    optimizer = optimizer or make_optimizer(network, config)
    rng = rng or np.random.default_rng(config.seed)
    if weights is None:
        weights = class_weights(list(new) + _weight_sample(old or []))
    weight_tensor = torch.from_numpy(np.asarray(weights, np.float32)).to(device)
    use_amp = device.type == "cuda"
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=use_amp)
    running: dict[str, list[float]] = {"new": [], "old": []}
    n_new = config.batch_size // 2 if old else config.batch_size
    start = time.perf_counter()
    for iteration in range(start_iteration, config.iterations):
        if should_stop is not None and should_stop():
            break
        parts = [
            sample_batch(new, n_new, config.crop, rng, particle_fraction=config.particle_fraction)
        ]
        if old:
            parts.append(
                sample_batch(
                    old,
                    config.batch_size - n_new,
                    config.crop,
                    rng,
                    particle_fraction=config.particle_fraction,
                )
            )
        image, label, importance = (torch.cat(tensors) for tensors in zip(*parts, strict=True))
        lr = learning_rate(config, iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, enabled=use_amp):
            logits = network(image.to(device))
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
            line = LogLine(
                done,
                float(np.mean(running["new"][-config.log_every :])) if running["new"] else math.nan,
                float(np.mean(running["old"][-config.log_every :])) if running["old"] else None,
                lr,
                time.perf_counter() - start,
            )
            on_log(line)
    network.eval()
    return network

"""BoxNet: a 3-class (background, particle, junk) fully convolutional encoder-decoder.

Like Warp 2's UNet2D it has residual blocks and skip connections, but it is much narrower and
shallower: it must pick a 4096² micrograph (764² for beta-galactosidase at the generic scale) in
well under a second on two CPU cores. Its widths are our own, not Warp's. With the default
widths it sees 237 px around a pixel: about 12 diameters at the generic models' 20 px a diameter.
The shipped generic models (``training.generic.GENERIC_ARCHITECTURE``) start with a strided
stem instead: every stage works at half the input's resolution and the three logit planes are
upsampled back: half the arithmetic, nearly the same view (231 px).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Architecture is model.json's, torch-free: re-exported from here as before
from boxnet_tui.model.info import (  # noqa: F401
    CONTEXT_POOL,
    MAX_BLOCKS,
    MAX_STAGES,
    MAX_STEM_STRIDE,
    MAX_WIDTH,
    Architecture,
)

CLASSES = ("background", "particle", "junk")


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a skip: conv-bn-relu-conv-bn + x, relu."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(x + self.bn2(self.conv2(y)), inplace=True)


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def place(network: nn.Module, device: torch.device | str) -> nn.Module:
    """``network`` moved to ``device`` in channels-last layout.

    Why: oneDNN's convolutions run 35-40 % faster on it on CPU, picking and training alike
    (0.51 -> 0.33 s for a 906² image, 0.98 -> 0.59 s for a training step of 32 128² crops, 2
    cores); cuDNN prefers it too. Apple's MPS backend has had faults with it: left as it is.
    """
    device = torch.device(device)
    if device.type in ("cpu", "cuda"):
        return network.to(device, memory_format=torch.channels_last)
    return network.to(device)


class BoxNet(nn.Module):
    """Image (N, 1, H, W) at 8 Å/px, normalised -> logits (N, 3, H, W)."""

    def __init__(self, architecture: Architecture | None = None) -> None:
        super().__init__()
        self.architecture = architecture or Architecture()
        widths = self.architecture.widths
        blocks = self.architecture.blocks_per_stage
        self.stem = _conv_bn_relu(1, widths[0], stride=self.architecture.stem_stride)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, width in enumerate(widths):
            self.encoders.append(nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)]))
            if i + 1 < len(widths):
                self.downs.append(_conv_bn_relu(width, widths[i + 1], stride=2))
        self.context = None
        if self.architecture.context_blocks:
            deepest = widths[-1]
            # a coarse junk logit alone: fed into the features, the wide view cost small
            # particles their F1 (synthetic families 0.91 -> 0.84)
            self.context = nn.Sequential(
                *[ResidualBlock(deepest) for _ in range(self.architecture.context_blocks)],
                nn.Conv2d(deepest, 1, 1),
            )
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(len(widths) - 1, 0, -1):
            self.ups.append(_conv_bn_relu(widths[i], widths[i - 1], kernel=1))
            self.decoders.append(
                nn.Sequential(
                    _conv_bn_relu(2 * widths[i - 1], widths[i - 1]),
                    ResidualBlock(widths[i - 1]),
                )
            )
        self.head = nn.Conv2d(widths[0], len(CLASSES), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x)
            if i < len(self.downs):
                skips.append(x)
                x = self.downs[i](x)
        junk = None if self.context is None else self.context(F.avg_pool2d(x, CONTEXT_POOL))
        for up, decoder in zip(self.ups, self.decoders, strict=True):
            skip = skips.pop()
            # the 1x1 conv-bn-relu acts on each pixel alone, so it commutes with a nearest
            # upsampling: done first, on a quarter of the pixels, with half the channels to
            # upsample after (the same output, less work)
            x = F.interpolate(up(x), size=skip.shape[-2:], mode="nearest")
            if isinstance(decoder, SkipDecoder):  # fused for inference: no concatenation
                x = decoder(x, skip)
            else:
                x = decoder(torch.cat([x, skip], dim=1))
        logits = self.head(x)
        if junk is not None:  # in place: no second full-resolution copy of the logits
            logits[:, 2:] += F.interpolate(junk, size=x.shape[-2:], mode="bilinear")
        if logits.shape[-2:] != size:  # a strided stem: three planes upsampled, not features
            logits = F.interpolate(logits, size=size, mode="bilinear")
        return logits


class SkipDecoder(nn.Module):
    """A decoder stage whose first convolution (fused with its batch norm) takes the
    upsampled features and the skip as two convolutions summed: the same output as one over
    their concatenation, without writing the concatenated full-resolution tensor. With the
    1x1 convolution before the upsampling, a retrained model's 1068² input took 0.469 s
    against 0.500 (median of 8, same process, 2 cores). Inference only: made by
    :func:`fuse_for_inference`."""

    def __init__(self, decoder: nn.Sequential) -> None:
        super().__init__()
        conv, rest = decoder[0][0], decoder[1:]
        half = conv.in_channels // 2
        like = {"device": conv.weight.device, "dtype": conv.weight.dtype}
        self.from_below = nn.Conv2d(half, conv.out_channels, 3, padding=1, bias=True, **like)
        self.from_skip = nn.Conv2d(half, conv.out_channels, 3, padding=1, bias=False, **like)
        with torch.no_grad():
            self.from_below.weight.copy_(conv.weight[:, :half])
            self.from_skip.weight.copy_(conv.weight[:, half:])
            bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
            self.from_below.bias.copy_(bias)
        self.rest = rest

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.rest(F.relu(self.from_below(x) + self.from_skip(skip), inplace=True))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fuse_for_inference(network: BoxNet) -> BoxNet:
    """Fold every batch norm into the convolution before it (eval only): same output, faster.

    Returns the same network object, in eval mode; it must not be trained afterwards.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    network.eval()
    probe = network.encoders[0][0].conv1.weight  # 3x3, several channels: its layout is clear
    channels_last = probe.is_contiguous(memory_format=torch.channels_last) and not (
        probe.is_contiguous()
    )
    for module in network.modules():
        if isinstance(module, ResidualBlock):
            for conv_name, norm_name in (("conv1", "bn1"), ("conv2", "bn2")):
                conv, norm = getattr(module, conv_name), getattr(module, norm_name)
                if isinstance(norm, nn.BatchNorm2d):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
                    setattr(module, norm_name, nn.Identity())
        elif isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                conv, norm = layers[i], layers[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, norm)
                    module[i + 1] = nn.Identity()
    for index, decoder in enumerate(network.decoders):
        # only once its batch norm is folded into the convolution (conv, identity, relu)
        if isinstance(decoder, nn.Sequential) and isinstance(decoder[0][1], nn.Identity):
            network.decoders[index] = SkipDecoder(decoder)
    if channels_last:  # as placed: the folded and the new convolutions too
        network.to(memory_format=torch.channels_last)
    network.requires_grad_(False)  # an optimizer given it has nothing to train
    return network

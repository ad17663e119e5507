"""Image operations: Fourier rescaling, band filters, normalisation, and display preparation.

Everything the network sees is at 8 Å/px. Rescaling is done by cropping (or zero-padding) the
Fourier transform, which is exact for band-limited images and, done one axis at a time, costs
about half of a full 2-D FFT of the input: the second axis is transformed only over the kept
columns. Shrinking four times or more with a low-pass, the input is first averaged over blocks
(:func:`prebin_block`), which is still exact for images band-limited to half of Nyquist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

NETWORK_PIXEL_SIZE = 8.0
HIGHPASS_ANGSTROM = 500.0
# A diameter-scaled network sees every particle this many pixels across, whatever its size:
# a 60 Å and a 500 Å protein look alike in size, so one model finds both (issue 10).
DEFAULT_PIXELS_PER_DIAMETER = 20.0
HIGHPASS_DIAMETERS = 2.6  # 500 Å for a 190 Å particle, as Warp's fixed 500 Å there
# A Gaussian low-pass of this sigma (px of the network's input) on a diameter-scaled input.
# Measured: real ribosome micrographs (8-bit, scaled down upstream) carry pixel-level noise no
# training micrograph had; unfiltered, a generic model found none of them (F1 0.00), with this
# low-pass 0.84 (sigma 0.7-2 px gave 0.82-0.85). It costs nothing: it is done on the spectrum.
LOWPASS_SIGMA_PX = 1.0
# How the network's input is normalised: "mean-std" (Warp's models and ours before it) or
# "percentile": centred on the median, scaled by half the 16th-84th percentile spread (one
# standard deviation for Gaussian noise). Measured: ice contamination in the centre of a
# micrograph inflates the standard deviation and fades every particle; a generic model trained
# on mean-std found none of 400 synthetic particles there (F1 0.00), the same weights 0.96 with
# the percentile spread. Recorded per model in model.json ("normalisation").
NORMALISATIONS = ("mean-std", "percentile")
# A diameter-scaled model is retrained with the particle this many pixels across, finer than the
# generic models' 20: the curated micrographs of one protein teach what tells its particles from
# the small objects beside them, which 20 px blurs. Measured on the ribosome (base never saw it,
# 5 micrographs, benchmarks/bench_retrain.py --real-lopo): see the README.
RETRAIN_PIXELS_PER_DIAMETER = 28.0
# ... unless the training micrographs would then be more than this many pixels a side (as much
# as the picker takes in one pass, model.inference.DEFAULT_TILE): a small protein on a fine
# pixel grid (120 Å at 1.7 Å/px: 1625² at 28 px) is retrained at the scale that fits, no coarser
# than its base's. A retrained model picks at its own scale: at 28 px a synthetic 120 Å
# protein's model took 2.6-3.0 s a 4096² micrograph, at 20 px 0.8-1.0 s, for the same F1 (0.977
# both); beta-galactosidase, 1068² at 28 px, also scored alike at 20 (0.871, 0.872 against 0.872,
# 0.871 over two seeds). See the README.
RETRAIN_MAX_SIDE = 1280


@dataclass(frozen=True)
class NetworkScale:
    """The pixel size a model sees its input at, and how it is normalised, stored in its
    ``model.json``.

    ``pixels_per_diameter`` None is Warp's rule: a fixed 8 Å/px and a 500 Å high-pass. A number
    scales the input by the particle diameter instead, so the particle is always that many
    pixels across and the high-pass follows (``HIGHPASS_DIAMETERS`` diameters).
    """

    pixels_per_diameter: float | None = None
    normalisation: str = "mean-std"  # one of NORMALISATIONS

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation {self.normalisation!r} is not one of {NORMALISATIONS}")

    def retrained(self, diameter: float | None = None, extent: float | None = None) -> NetworkScale:
        """The scale a model retrained from this one sees: :data:`RETRAIN_PIXELS_PER_DIAMETER`
        for a diameter-scaled model, Warp's fixed 8 Å/px for one of Warp's.

        With the particle ``diameter`` and the training micrographs' longest side ``extent``
        (both Å), coarser where that side would exceed :data:`RETRAIN_MAX_SIDE` pixels, but
        never coarser than this model's own scale.
        """
        if self.pixels_per_diameter is None:
            return self
        pixels = RETRAIN_PIXELS_PER_DIAMETER
        if diameter and extent:
            fits = round(RETRAIN_MAX_SIDE * float(diameter) / float(extent), 1)
            coarsest = min(self.pixels_per_diameter, RETRAIN_PIXELS_PER_DIAMETER)
            pixels = max(coarsest, min(pixels, fits))
        return replace(self, pixels_per_diameter=pixels)

    def normalise(self, image: np.ndarray) -> np.ndarray:
        """``image`` normalised as this model's input is."""
        return normalise(image, self.normalisation)

    def pixel_size(self, diameter: float) -> float:
        """Å/px of the network's input for particles of ``diameter`` Å."""
        if self.pixels_per_diameter is None:
            return NETWORK_PIXEL_SIZE
        return float(diameter) / self.pixels_per_diameter

    def highpass(self, diameter: float) -> float:
        """Å: the high-pass applied to the network's input."""
        if self.pixels_per_diameter is None:
            return HIGHPASS_ANGSTROM
        return HIGHPASS_DIAMETERS * float(diameter)

    @property
    def lowpass_px(self) -> float:
        """Sigma (px) of the Gaussian low-pass applied to the network's input (0: none)."""
        return 0.0 if self.pixels_per_diameter is None else LOWPASS_SIGMA_PX

    def to_json(self) -> float | None:
        return self.pixels_per_diameter

    @classmethod
    def from_json(cls, value: object, normalisation: str = "mean-std") -> NetworkScale:
        if value is None:
            return cls(normalisation=normalisation)
        number = float(value)  # type: ignore[arg-type]
        if not (math.isfinite(number) and 2.0 <= number <= 200.0):
            raise ValueError(f"pixels_per_diameter {value!r} is not from 2 to 200")
        return cls(number, normalisation)


WARP_SCALE = NetworkScale()  # 8 Å/px: Warp's models, example TIFFs and masks


def scaled_shape(
    shape: tuple[int, int], pixel_size: float, target_pixel_size: float = NETWORK_PIXEL_SIZE
) -> tuple[int, int]:
    """Shape of an image of ``shape`` at ``pixel_size`` once rescaled to ``target_pixel_size``.

    Each side is rounded to the nearest even number (at least 2), so the Fourier crop is
    symmetric; the true pixel size after rescaling is therefore ``pixel_size * n / new_n``.
    """
    factor = pixel_size / target_pixel_size
    return tuple(max(2, 2 * round(n * factor / 2)) for n in shape)  # type: ignore[return-value]


def _crop_or_pad_last(spectrum: torch.Tensor, n_out: int) -> torch.Tensor:
    """Keep (or zero-pad to) ``n_out // 2 + 1`` half-spectrum columns of an rfft axis."""
    keep = n_out // 2 + 1
    have = spectrum.shape[-1]
    if keep <= have:
        return spectrum[..., :keep]
    from torch.nn.functional import pad

    return pad(spectrum, (0, keep - have))


def _crop_or_pad_first(spectrum: torch.Tensor, n_out: int) -> torch.Tensor:
    """Keep (or zero-pad to) the ``n_out`` lowest frequencies of a full-fft first axis."""
    n_in = spectrum.shape[0]
    if n_out == n_in:
        return spectrum
    low = (min(n_in, n_out) + 1) // 2  # frequencies 0 .. low-1
    high = min(n_in, n_out) - low  # frequencies -high .. -1
    out = spectrum.new_zeros((n_out, *spectrum.shape[1:]))
    out[:low] = spectrum[:low]
    if high:
        out[n_out - high :] = spectrum[n_in - high :]
    return out


# A shrinking rescale with a low-pass first takes the mean of b x b blocks (b <= 8, dividing
# both sides) where the kept band is at most half the binned one (shrinking 2b times or more):
# the FFTs then see b² times fewer pixels (a 4096² micrograph to 9.5 Å/px: the first FFT was
# 63 of the rescale's 128 ms). The block mean's blur and half-block shift are undone on the kept
# band; what it folds back (noise beyond the binned Nyquist, at most 0.42 of its amplitude at
# the band's edge, where the low-pass leaves 0.007 of it) is all that differs. See the README.
PREBIN_LARGEST = 8
PREBIN_MIN_LOWPASS_PX = 0.5


def prebin_block(shape: tuple[int, int], out_shape: tuple[int, int], lowpass_px: float) -> int:
    """The block side :func:`fourier_rescale` averages over first (1: none)."""
    if lowpass_px < PREBIN_MIN_LOWPASS_PX:
        return 1
    shrink = min(n / m for n, m in zip(shape, out_shape, strict=True))
    for block in range(min(PREBIN_LARGEST, int(shrink // 2)), 1, -1):
        if shape[0] % block == 0 and shape[1] % block == 0:
            return block
    return 1


def _block_mean_transfer(n: int, block: int, frequencies: torch.Tensor) -> torch.Tensor:
    """What a mean over ``block`` samples, each block's value placed at its first sample, does
    to the integer ``frequencies`` (cycles per ``n`` samples) of an axis: a blur and a shift of
    (block - 1) / 2 samples, as a complex factor."""
    import torch

    m = torch.arange(block, dtype=torch.float64)
    phase = 2 * math.pi * frequencies.double()[..., None] * m / n
    return torch.complex(torch.cos(phase), torch.sin(phase)).mean(dim=-1).to(torch.complex64)


def _smooth_component_spectrum(src: torch.Tensor, out_y: int, out_x: int) -> torch.Tensor:
    """The rfft2 spectrum, cropped or padded as the image's is, of the smooth component of
    Moisan's periodic-plus-smooth decomposition (J. Math. Imaging Vis. 39, 2011).

    An FFT sees an image as tiled: a gain or ice gradient becomes a jump at its edges, which
    the rescale's crop and the high-pass turn into ringing across the image. The smooth
    component is the harmonic image whose edge jumps are the image's own; subtracting it
    leaves a periodic image whose interior is unchanged up to that smooth surface. It depends
    only on the edge rows and columns (a carbon film or a crowd in the middle cannot tilt it),
    and costs two 1-D FFTs of an edge, computed here only on the kept frequencies.
    """
    import torch

    n_y, n_x = src.shape
    top_jump = src[-1, :].double() - src[0, :].double()
    side_jump = src[:, -1].double() - src[:, 0].double()
    a = _crop_or_pad_last(torch.fft.rfft(top_jump)[None, :], out_x)
    b = _crop_or_pad_first(torch.fft.fft(side_jump)[:, None], out_y)
    # integer frequencies of the kept coefficients (0 where zero-padded: those stay 0)
    q = _crop_or_pad_first(torch.fft.fftfreq(n_y, 1.0 / n_y, dtype=torch.float64)[:, None], out_y)
    r = _crop_or_pad_last(torch.arange(n_x // 2 + 1, dtype=torch.float64)[None, :], out_x)
    w_y, w_x = 2 * math.pi * q / n_y, 2 * math.pi * r / n_x
    # 1-D factors in float64, the 2-D arrays in single precision and in place: an upscaled
    # 4096² spectrum is 67 MB a copy
    smooth = a.to(torch.complex64) * (1 - torch.exp(1j * w_y)).to(torch.complex64)
    smooth.addcmul_(b.to(torch.complex64), (1 - torch.exp(1j * w_x)).to(torch.complex64))
    # 2 cos w - 2 as -4 sin²(w/2), each 1-D term in float64 before the single-precision sum
    laplacian = (-4 * torch.sin(w_y / 2) ** 2).float() + (-4 * torch.sin(w_x / 2) ** 2).float()
    # 0 at the mean (the periodic component keeps it) and where zero-padded (numerator 0)
    laplacian[laplacian == 0] = 1.0
    smooth /= laplacian
    smooth[0, 0] = 0
    return smooth


def frequency_grid(shape: tuple[int, int], pixel_size: float) -> np.ndarray:
    """Spatial frequency magnitude (1/Å) of each coefficient of an rfft2 of ``shape``."""
    fy = np.fft.fftfreq(shape[0], d=pixel_size)
    fx = np.fft.rfftfreq(shape[1], d=pixel_size)
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def highpass_filter(
    shape: tuple[int, int], pixel_size: float, cutoff_angstrom: float = HIGHPASS_ANGSTROM
) -> np.ndarray:
    """rfft2-shaped high-pass: 0 at DC rising by a cosine to 1 at ``1 / cutoff_angstrom``."""
    ramp = np.clip(frequency_grid(shape, pixel_size) * cutoff_angstrom, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)


def gaussian_lowpass(shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """rfft2-shaped transfer function of a Gaussian blur of ``sigma_px`` pixels."""
    f = frequency_grid(shape, 1.0)  # cycles per pixel
    return np.exp(-2.0 * (math.pi * sigma_px * f) ** 2).astype(np.float32)


def lowpass_filter(shape: tuple[int, int], pixel_size: float, cutoff_angstrom: float) -> np.ndarray:
    """rfft2-shaped Gaussian low-pass, 0.5 at ``1 / cutoff_angstrom``."""
    f = frequency_grid(shape, pixel_size) * cutoff_angstrom
    return np.exp(-math.log(2.0) * f**2).astype(np.float32)


def fourier_rescale(
    image: np.ndarray,
    pixel_size: float,
    target_pixel_size: float = NETWORK_PIXEL_SIZE,
    *,
    highpass_angstrom: float | None = None,
    out_shape: tuple[int, int] | None = None,
    lowpass_px: float = 0.0,
    periodic: bool = True,
    prebin: bool = True,
) -> tuple[np.ndarray, float]:
    """Rescale ``image`` to ``target_pixel_size`` by Fourier cropping or padding.

    Args:
        image: 2-D array.
        pixel_size: Å/px of ``image``.
        target_pixel_size: Å/px wanted.
        highpass_angstrom: if given, also high-pass at this length (free: done on the crop).
        out_shape: force the output shape (else :func:`scaled_shape`).
        lowpass_px: if > 0, also a Gaussian low-pass of this sigma in output pixels (free).
        periodic: rescale the periodic component (:func:`_smooth_component_spectrum`), so
            that a gradient across the image does not ring.
        prebin: average blocks first where :func:`prebin_block` allows (False: the exact
            crop whatever the shrink; for comparisons).

    Returns:
        The float32 rescaled image (mean preserved) and its exact pixel size along x.
    """
    import torch  # here, not at the top: the curation app shows images without torch

    src = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    n_y, n_x = src.shape
    out_y, out_x = out_shape or scaled_shape((n_y, n_x), pixel_size, target_pixel_size)
    new_pixel = pixel_size * n_x / out_x
    block = prebin_block((n_y, n_x), (out_y, out_x), lowpass_px) if prebin else 1
    with torch.no_grad():
        binned = src
        if block > 1:  # strided sums: several times faster than avg_pool2d here
            binned = src[::block, ::block].clone()
            for i in range(block):
                for j in range(block):
                    if i or j:
                        binned += src[i::block, j::block]
            binned /= block * block
        rows = _crop_or_pad_last(torch.fft.rfft(binned, dim=1), out_x)
        spectrum = _crop_or_pad_first(torch.fft.fft(rows, dim=0), out_y)
        if block > 1:
            q = _crop_or_pad_first(torch.fft.fftfreq(n_y // block, block / n_y)[:, None], out_y)
            r = torch.arange(out_x // 2 + 1, dtype=torch.float64)[None, :]
            spectrum /= _block_mean_transfer(n_y, block, q)
            spectrum /= _block_mean_transfer(n_x, block, r)
            spectrum *= block * block  # the full image's sums, as the smooth part has them
        if periodic:  # from the full image's edges: a block mean's edges jump differently
            spectrum -= _smooth_component_spectrum(src, out_y, out_x)
        if highpass_angstrom:
            spectrum *= torch.from_numpy(
                highpass_filter((out_y, out_x), new_pixel, highpass_angstrom)
            )
        if lowpass_px > 0:
            spectrum *= torch.from_numpy(gaussian_lowpass((out_y, out_x), lowpass_px))
        small = torch.fft.irfft(torch.fft.ifft(spectrum, dim=0), n=out_x, dim=1)
        small *= (out_y * out_x) / (n_y * n_x)
    return small.numpy().astype(np.float32, copy=False), float(new_pixel)


def normalise(image: np.ndarray, method: str = "mean-std") -> np.ndarray:
    """Centred and scaled to unit spread, measured on the central half of the image.

    ``method`` (:data:`NORMALISATIONS`): "mean-std" is zero mean, unit standard deviation;
    "percentile" is the median and half the 16th-84th percentile spread, which a dark
    contamination or a carbon edge covering part of the image barely moves. The centre is used
    because micrograph borders often carry artefacts (gain edges, filter wrap-around). A flat
    image becomes all zeros rather than NaN.
    """
    n_y, n_x = image.shape
    centre = image[n_y // 4 : n_y - n_y // 4 or None, n_x // 4 : n_x - n_x // 4 or None]
    if method == "percentile":
        sample = centre.ravel()[:: max(1, centre.size // 250_000)]  # plenty for percentiles
        low, middle, high = np.percentile(sample, [16, 50, 84])
        offset, spread = float(middle), float(high - low) / 2
    else:
        offset = float(centre.mean(dtype=np.float64))
        spread = float(centre.std(dtype=np.float64))
    if not spread > 0:
        return np.zeros_like(image, dtype=np.float32)
    return ((image - offset) / spread).astype(np.float32, copy=False)


def prepare_for_network(
    image: np.ndarray,
    pixel_size: float,
    *,
    invert: bool = False,
    target_pixel_size: float = NETWORK_PIXEL_SIZE,
    highpass_angstrom: float = HIGHPASS_ANGSTROM,
    lowpass_px: float = 0.0,
    normalisation: str = "mean-std",
) -> tuple[np.ndarray, float]:
    """Micrograph -> what BoxNet sees: ``target_pixel_size`` (Warp: 8 Å/px), high-passed
    (Warp: at 500 Å), low-passed (Warp: not), normalised. :meth:`NetworkScale.pixel_size`,
    :meth:`NetworkScale.highpass`, :attr:`NetworkScale.lowpass_px` and
    :attr:`NetworkScale.normalisation` give a model's values.

    Args:
        invert: for negative stain (particles bright), so particles always look dark.

    Returns:
        The prepared image and the factor from its pixels to the micrograph's pixels.
    """
    small, new_pixel = fourier_rescale(
        image,
        pixel_size,
        target_pixel_size,
        highpass_angstrom=highpass_angstrom,
        lowpass_px=lowpass_px,
    )
    small = normalise(small, normalisation)
    if invert:
        small = -small
    return small, new_pixel / pixel_size


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks (edges that do not fill a block are dropped)."""
    if factor <= 1:
        return np.asarray(image, dtype=np.float32)
    n_y, n_x = (s // factor for s in image.shape)
    blocks = np.asarray(image[: n_y * factor, : n_x * factor], dtype=np.float32)
    return blocks.reshape(n_y, factor, n_x, factor).mean(axis=(1, 3))


def contrast_stretch(
    image: np.ndarray, low_percentile: float = 0.5, high_percentile: float = 99.5
) -> np.ndarray:
    """Map the given percentiles to 0..255 (uint8), clipping outside them."""
    flat = image.reshape(-1)
    sample = flat[:: max(1, flat.size // 250_000)]  # percentiles of a sample are plenty
    low, high = np.percentile(sample, [low_percentile, high_percentile])
    if not high > low:
        return np.full(image.shape, 128, dtype=np.uint8)
    scaled = (image - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def display_image(
    image: np.ndarray,
    pixel_size: float,
    max_side: int = 1024,
    *,
    lowpass_angstrom: float | None = 20.0,
    low_percentile: float = 0.5,
    high_percentile: float = 99.5,
) -> tuple[np.ndarray, int]:
    """A micrograph prepared for the eye: binned to at most ``max_side``, low-passed, stretched.

    Returns:
        The uint8 image and the binning factor (display pixel -> ``factor`` micrograph pixels).
    """
    factor = max(1, math.ceil(max(image.shape) / max_side))
    small = bin_image(image, factor)
    if lowpass_angstrom:
        spectrum = np.fft.rfft2(small)
        spectrum *= lowpass_filter(small.shape, pixel_size * factor, lowpass_angstrom)
        small = np.fft.irfft2(spectrum, s=small.shape).astype(np.float32)
    return contrast_stretch(small, low_percentile, high_percentile), factor

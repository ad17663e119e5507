"""Imaging: Fourier rescale against a plain reference, filters, normalisation, display."""

from __future__ import annotations

import numpy as np
import pytest

from boxnet_tui import imaging


def _band_limited(shape, cutoff_fraction, seed=0):
    """Random image with no power above ``cutoff_fraction`` of Nyquist (so cropping is exact)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft2(rng.normal(size=shape))
    fy = np.abs(np.fft.fftfreq(shape[0]))[:, None] * 2
    fx = np.fft.rfftfreq(shape[1])[None, :] * 2
    spectrum[(fy > cutoff_fraction) | (fx > cutoff_fraction)] = 0
    return np.fft.irfft2(spectrum, s=shape).astype(np.float32)


def _reference_crop(image, out_shape):
    """Plain centred crop of the full, shifted 2-D spectrum (float64)."""
    spectrum = np.fft.fftshift(np.fft.fft2(image.astype(np.float64)))
    (n_y, n_x), (h, w) = image.shape, out_shape
    top, left = n_y // 2 - h // 2, n_x // 2 - w // 2
    crop = spectrum[top : top + h, left : left + w]
    return np.real(np.fft.ifft2(np.fft.ifftshift(crop))) * (h * w) / (n_y * n_x)


@pytest.mark.parametrize("shape", [(512, 512), (480, 640), (333, 257)])
def test_downscale_matches_plain_fourier_crop(shape):
    image = _band_limited(shape, 0.2)
    small, pixel = imaging.fourier_rescale(image, 1.0, 4.0, periodic=False)
    assert small.shape == imaging.scaled_shape(shape, 1.0, 4.0)
    np.testing.assert_allclose(small, _reference_crop(image, small.shape), atol=1e-4)
    assert pixel == pytest.approx(shape[1] / small.shape[1], rel=1e-6)


def test_upscale_then_downscale_is_identity_for_band_limited_image():
    image = _band_limited((128, 128), 0.5)
    big, _ = imaging.fourier_rescale(image, 4.0, 2.0, periodic=False)
    assert big.shape == (256, 256)
    back, _ = imaging.fourier_rescale(big, 2.0, 4.0, periodic=False)
    np.testing.assert_allclose(back, image, atol=1e-4)


def test_rescale_preserves_mean_and_scaled_shape_is_even():
    image = np.full((1001, 777), 3.5, np.float32)
    small, _ = imaging.fourier_rescale(image, 1.77, 8.0)
    assert all(n % 2 == 0 for n in small.shape)
    assert small.mean() == pytest.approx(3.5, rel=1e-5)
    assert imaging.scaled_shape((4096, 4096), 1.77) == (906, 906)


@pytest.mark.parametrize(
    "shape, out_shape, lowpass_px, block",
    [
        ((4096, 4096), (764, 764), 1.0, 2),  # 1.77 -> 9.5 Å/px: 5.4 times smaller
        ((4092, 5760), (454, 640), 1.0, 4),  # K3 at 0.83 Å/px, 150 Å: 9 times; 4 divides both
        ((8184, 11520), (454, 640), 1.0, 8),  # super-resolution: 18 times, at most 8
        ((4095, 4095), (764, 764), 1.0, 1),  # odd sides: no block divides them
        ((4096, 4096), (1054, 1054), 1.0, 1),  # 3.9 times: the kept band passes half
        ((4096, 4096), (764, 764), 0.0, 1),  # no low-pass (Warp's 8 Å/px): exact
    ],
)
def test_prebin_block_rule(shape, out_shape, lowpass_px, block):
    assert imaging.prebin_block(shape, out_shape, lowpass_px) == block


def _exact(*args, **kwargs):
    return imaging.fourier_rescale(*args, prebin=False, **kwargs)


@pytest.mark.parametrize("periodic", [True, False])
def test_prebinned_rescale_is_exact_below_the_binned_nyquist(periodic):
    # nothing beyond half of Nyquist to fold back: the block mean's blur and shift are undone
    image = _band_limited((1024, 768), 0.4, seed=3)
    options = {"highpass_angstrom": 300.0, "lowpass_px": 1.0, "periodic": periodic}
    assert imaging.prebin_block(image.shape, imaging.scaled_shape(image.shape, 1.0, 5.0), 1.0) == 2
    binned, pixel = imaging.fourier_rescale(image, 1.0, 5.0, **options)
    exact, exact_pixel = _exact(image, 1.0, 5.0, **options)
    assert pixel == exact_pixel
    np.testing.assert_allclose(binned, exact, atol=1e-4 * float(exact.std()))
    # a gradient's jump at the tiled edges folds back along them only: inside Warp's border
    # (0.8 diameters, 16 px at 20 px a diameter) the image is the same
    image += np.linspace(0, 4, 768, dtype=np.float32)
    binned, _ = imaging.fourier_rescale(image, 1.0, 5.0, **options)
    exact, _ = _exact(image, 1.0, 5.0, **options)
    inside = (slice(16, -16), slice(16, -16))
    np.testing.assert_allclose(binned[inside], exact[inside], atol=0.005 * float(exact.std()))


def test_prebinned_rescale_of_white_noise_differs_by_little():
    # the worst case: noise up to Nyquist, of which the block mean folds some back
    image = np.random.default_rng(4).normal(size=(2048, 2048)).astype(np.float32)
    binned, _ = imaging.fourier_rescale(image, 1.77, 9.5, highpass_angstrom=494, lowpass_px=1.0)
    exact, _ = _exact(image, 1.77, 9.5, highpass_angstrom=494, lowpass_px=1.0)
    assert np.corrcoef(binned.ravel(), exact.ravel())[0, 1] > 0.99
    assert binned.std() == pytest.approx(exact.std(), rel=0.02)


@pytest.mark.parametrize("shape, factor", [((512, 512), 2.0), ((333, 257), 3.0), ((200, 160), 0.5)])
def test_periodic_rescale_removes_a_gradient_and_keeps_the_rest(shape, factor):
    # A gain or ice gradient is a jump at the edges of the tiled image: without the periodic
    # component it rings over the whole rescaled, high-passed image.
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    ramp = 10 * (rows / shape[0] + cols / shape[1])
    image = np.random.default_rng(1).normal(size=shape).astype(np.float32)

    def rescale(data, periodic):
        return imaging.fourier_rescale(data, 1.0, factor, highpass_angstrom=50, periodic=periodic)[
            0
        ]

    plain = rescale(image, False)
    edge = max(4, plain.shape[0] // 16)
    interior = (slice(edge, -edge), slice(edge, -edge))
    assert np.isfinite(rescale(image, True)).all()
    ringing = np.std((rescale(image + ramp, False) - plain)[interior])
    assert ringing > 0.05
    assert np.std((rescale(image + ramp, True) - rescale(image, True))[interior]) < ringing / 10
    # an image without a gradient keeps its interior and its mean
    assert np.std((rescale(image, True) - plain)[interior]) < 0.05 * np.std(plain)
    shifted, _ = imaging.fourier_rescale(image + ramp + 3.0, 1.0, factor)
    assert shifted.mean() == pytest.approx((image + ramp).mean() + 3.0, abs=1e-3)


def _moisan_periodic(image: np.ndarray) -> np.ndarray:
    """Moisan's periodic component the plain way: the boundary image, its full FFT, divided
    by the periodic Laplacian's eigenvalues, subtracted (float64)."""
    u = image.astype(np.float64)
    n_y, n_x = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.arange(n_y)[:, None]
    r = np.arange(n_x)[None, :]
    eigen = 2 * np.cos(2 * np.pi * q / n_y) + 2 * np.cos(2 * np.pi * r / n_x) - 4
    eigen[0, 0] = 1.0
    smooth = np.fft.fft2(v) / eigen
    smooth[0, 0] = 0
    return u - np.real(np.fft.ifft2(smooth))


@pytest.mark.parametrize("shape", [(64, 80), (63, 81), (65, 64)])
@pytest.mark.parametrize("factor", [2.0, 3.0, 0.5])
def test_the_periodic_rescale_is_the_plain_rescale_of_moisans_periodic_component(shape, factor):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.random.default_rng(2).normal(size=shape) + 0.2 * rows - 0.1 * cols + 5.0
    image = image.astype(np.float32)
    ours, _ = imaging.fourier_rescale(image, 1.0, factor)
    plain, _ = imaging.fourier_rescale(_moisan_periodic(image), 1.0, factor, periodic=False)
    np.testing.assert_allclose(ours, plain, atol=1e-4)


def test_highpass_removes_slow_gradient_keeps_fine_detail():
    _, x = np.mgrid[0:512, 0:512].astype(np.float32)
    gradient = x / 512 * 10  # a ramp over 4 µm: far below 1/500 Å
    detail = np.sin(2 * np.pi * x / 8)  # 64 Å period at 8 Å/px
    out, _ = imaging.fourier_rescale(
        gradient + detail, 8.0, 8.0, highpass_angstrom=500, periodic=False
    )
    centre = out[128:384, 128:384]
    assert abs(centre.mean()) < 0.05
    assert np.corrcoef(centre.ravel(), detail[128:384, 128:384].ravel())[0, 1] > 0.98


def test_normalise_uses_central_half():
    image = np.random.default_rng(0).normal(5, 2, size=(200, 200)).astype(np.float32)
    image[:10] = 1000  # border artefact outside the central half
    out = imaging.normalise(image)
    centre = out[50:150, 50:150]
    assert abs(centre.mean()) < 1e-3 and centre.std() == pytest.approx(1, abs=1e-3)
    assert np.all(imaging.normalise(np.ones((10, 10), np.float32)) == 0)


def test_percentile_normalisation_is_not_faded_by_a_dark_contamination():
    """A dark blob over 6 % of the centre inflates the standard deviation (the ice, and every
    particle in it, fades to a seventh); the percentile spread keeps the ice near unit spread
    (it gives way gradually as the blob nears 16 %)."""
    rng = np.random.default_rng(1)
    image = rng.normal(0, 1, size=(400, 400)).astype(np.float32)
    y, x = np.mgrid[:400, :400]
    image[(y - 200) ** 2 + (x - 200) ** 2 < 28**2] -= 30  # ice contamination
    ice = (y - 200) ** 2 + (x - 200) ** 2 > 40**2
    plain = imaging.normalise(image)
    robust = imaging.normalise(image, "percentile")
    assert plain[ice].std() < 0.2
    assert 0.85 < robust[ice].std() < 1.05
    assert abs(np.median(robust[ice])) < 0.1
    gaussian = rng.normal(5, 2, size=(300, 300)).astype(np.float32)
    same = imaging.normalise(gaussian, "percentile")  # on plain noise both agree
    assert np.abs(same - imaging.normalise(gaussian)).max() < 0.1
    assert np.all(imaging.normalise(np.ones((10, 10), np.float32), "percentile") == 0)


def test_prepare_for_network_scale_and_inversion():
    image = np.random.default_rng(3).normal(size=(1024, 1024)).astype(np.float32)
    prepared, factor = imaging.prepare_for_network(image, 2.0)
    assert prepared.shape == (256, 256)
    assert factor == pytest.approx(4.0)
    inverted, _ = imaging.prepare_for_network(image, 2.0, invert=True)
    np.testing.assert_allclose(inverted, -prepared, atol=1e-6)


def test_display_image_bins_stretches_and_lowpasses():
    image = np.random.default_rng(4).normal(size=(2048, 1000)).astype(np.float32)
    shown, factor = imaging.display_image(image, 1.0, max_side=512)
    assert factor == 4
    assert shown.dtype == np.uint8 and shown.shape == (512, 250)
    assert shown.min() == 0 and shown.max() == 255
    flat, _ = imaging.display_image(np.zeros((64, 64), np.float32), 1.0)
    assert np.all(flat == 128)


def test_bin_image_block_mean():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(imaging.bin_image(image, 2), [[2.5, 4.5], [10.5, 12.5]])

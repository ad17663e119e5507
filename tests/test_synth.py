"""Synthetic micrographs: determinism, ground truth, files, and that the physics is there."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

from boxnet_tui import synth
from boxnet_tui.errors import UserError
from boxnet_tui.io.layout import mask_path, pick_path
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.micrographs import read_micrograph
from boxnet_tui.io.star import read_micrograph_names, read_picks
from boxnet_tui.synth import junk_mask_8a, make_dataset, make_micrograph, micrograph_seed

# Small micrographs with small particles keep the file fast and still hold a dozen particles.
SIZE, PIXEL, DIAMETER = 512, 1.5, 90.0
RADIUS_PX = DIAMETER / PIXEL / 2


def _simulate(seed: int, **switches: object) -> synth.SynthMicrograph:
    return synth._simulate(SIZE, SIZE, PIXEL, DIAMETER, seed, 0, **switches)


def test_same_seed_same_bytes_and_other_seeds_differ() -> None:
    a = make_micrograph(256, PIXEL, DIAMETER, seed=3)
    b = make_micrograph(256, PIXEL, DIAMETER, seed=3)
    assert a.image.dtype == np.float32 and a.image.shape == (256, 256)
    assert a.image.tobytes() == b.image.tobytes()
    assert np.array_equal(a.picks.xy, b.picks.xy) and np.array_equal(a.junk, b.junk)
    assert a.defocus_um == b.defocus_um
    c = make_micrograph(256, PIXEL, DIAMETER, seed=4)
    assert not np.allclose(a.image, c.image)
    assert a.defocus_um != c.defocus_um
    # Another protein, same everything else: only the particles change.
    d = make_micrograph(256, PIXEL, DIAMETER, seed=3, protein_seed=9)
    assert np.array_equal(a.picks.xy, d.picks.xy) and a.defocus_um == d.defocus_um
    assert a.image.tobytes() != d.image.tobytes()


def test_bytes_do_not_depend_on_the_number_of_threads() -> None:
    # A multi-threaded BLAS sums in a thread-dependent order; the generator must not use one.
    code = (
        "import hashlib; from boxnet_tui.synth import make_micrograph; "
        "print(hashlib.sha256(make_micrograph(256, 1.5, 90.0, seed=7).image.tobytes()).hexdigest())"
    )
    repo = str(Path(__file__).resolve().parents[1])  # importable without an install
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    single = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    here = make_micrograph(256, 1.5, 90.0, seed=7).image.tobytes()
    assert single == hashlib.sha256(here).hexdigest()


def test_rectangular_shape() -> None:
    m = make_micrograph(pixel_size=PIXEL, diameter=DIAMETER, seed=1, shape=(256, 400))
    assert m.image.shape == m.junk.shape == (256, 400)
    assert m.junk.dtype == bool and m.pixel_size == PIXEL
    assert np.all(m.picks.x <= 400 - 1 - RADIUS_PX) and np.all(m.picks.y <= 256 - 1 - RADIUS_PX)


def test_picks_inside_apart_and_clear_of_junk() -> None:
    with_junk = 0
    for seed in range(10):
        m = make_micrograph(SIZE, PIXEL, DIAMETER, seed=seed)
        x, y = m.picks.x, m.picks.y
        assert len(m.picks) > 0 and np.isnan(m.picks.score).all()
        # The whole particle is in the image.
        assert x.min() >= RADIUS_PX and x.max() <= SIZE - 1 - RADIUS_PX
        assert y.min() >= RADIUS_PX and y.max() <= SIZE - 1 - RADIUS_PX
        # No two closer than 0.9 diameters.
        gaps = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
        np.fill_diagonal(gaps, np.inf)
        assert gaps.min() >= 0.9 * DIAMETER / PIXEL - 1e-9
        if m.junk.any():
            with_junk += 1
            # At least one radius from junk, and junk is darker than the ice.
            clearance = ndimage.distance_transform_edt(~m.junk)
            rows, cols = np.round(y).astype(int), np.round(x).astype(int)
            assert clearance[rows, cols].min() >= RADIUS_PX - 1
            assert m.image[m.junk].mean() < m.image[~m.junk].mean()
    assert with_junk >= 3  # carbon and contamination do occur


def test_density_varies_from_sparse_to_crowded() -> None:
    counts = [len(make_micrograph(SIZE, PIXEL, DIAMETER, seed=s).picks) for s in range(12)]
    assert max(counts) >= 3 * max(min(counts), 1)


def test_particles_stand_out_after_a_low_pass_and_not_without_them() -> None:
    def contrast_at_picks(particles: bool) -> float:
        # Band-pass (removes the ice gradient), then the value at each pick in units of the
        # background's spread, pooled over micrographs. Particles are dark (underfocus).
        values = []
        for seed in range(6):
            m = _simulate(seed, particles=particles)
            image = m.image.astype(np.float64)
            band = ndimage.gaussian_filter(image, RADIUS_PX / 3) - ndimage.gaussian_filter(
                image, 3 * RADIUS_PX
            )
            rng = np.random.default_rng(seed)
            ys, xs = rng.uniform(RADIUS_PX, SIZE - 1 - RADIUS_PX, (2, 4000))
            distance = np.hypot(xs[:, None] - m.picks.x, ys[:, None] - m.picks.y).min(axis=1)
            rows, cols = ys.astype(int), xs.astype(int)
            background = band[rows, cols][(distance > 2 * RADIUS_PX) & ~m.junk[rows, cols]]
            at = band[np.round(m.picks.y).astype(int), np.round(m.picks.x).astype(int)]
            values.append((background.mean() - at) / background.std())
        pooled = np.concatenate(values)
        assert pooled.size >= 40
        return float(pooled.mean())

    # Noise alone gives a mean of N(0, 1/sqrt(n)) ≈ ±0.15; the particles give well over 1.
    assert contrast_at_picks(particles=True) > 1.0
    assert abs(contrast_at_picks(particles=False)) < 0.5


def test_signal_to_noise_is_low_as_in_real_micrographs() -> None:
    ratios = []
    for seed in range(4):
        full = _simulate(seed, noise=False)
        empty = _simulate(seed, noise=False, particles=False)
        noisy = _simulate(seed)
        signal = full.image - empty.image
        rows, cols = np.mgrid[:SIZE, :SIZE]
        discs = np.zeros((SIZE, SIZE), bool)
        for x, y in full.picks.xy:
            discs |= (cols - x) ** 2 + (rows - y) ** 2 < RADIUS_PX**2
        noise = noisy.image - full.image
        ratios.append(signal[discs].var() / noise[~full.junk].var())
    # Per-pixel SNR inside the particles: present, but far below 1 (real data: ~0.01–0.1).
    assert min(ratios) > 0.001 and max(ratios) < 0.1


def _thon_ring_defocus(image: np.ndarray, pixel_size: float) -> float:
    """The defocus whose CTF zeros best match the radial power spectrum (a crude CTFFIND)."""
    detrended = image - ndimage.gaussian_filter(image, 20)
    power = np.abs(np.fft.rfft2(detrended)) ** 2
    ky = np.fft.fftfreq(image.shape[0], pixel_size)[:, None]
    kx = np.fft.rfftfreq(image.shape[1], pixel_size)[None, :]
    edges = np.linspace(0, 1 / (2 * pixel_size), 200)
    index = np.digitize(np.hypot(ky, kx).ravel(), edges)
    counts = np.maximum(np.bincount(index, minlength=edges.size + 1), 1)
    profile = np.bincount(index, power.ravel(), edges.size + 1) / counts
    k, profile = edges[:-1], profile[1 : edges.size]
    band = (k > 1 / 40) & (k < 1 / 7)
    k, profile = k[band], np.log(profile[band])
    profile -= ndimage.uniform_filter1d(profile, 15, mode="nearest")
    wavelength = synth._wavelength()
    scores = {}
    for defocus in np.arange(0.5, 3.5, 0.02):
        chi = np.pi * wavelength * defocus * 1e4 * k**2 - np.pi / 2 * 2.7e7 * wavelength**3 * k**4
        model = np.sin(chi) ** 2
        model -= ndimage.uniform_filter1d(model, 15, mode="nearest")
        scores[defocus] = np.corrcoef(profile, model)[0, 1]
    return float(max(scores, key=scores.get))


def test_thon_rings_match_the_reported_defocus() -> None:
    for seed in range(3):
        m = make_micrograph(SIZE, PIXEL, 180.0, seed=seed)
        assert 0.8 <= m.defocus_um <= 3.0
        assert _thon_ring_defocus(m.image.astype(np.float64), PIXEL) == pytest.approx(
            m.defocus_um, abs=0.15
        )


def test_defocus_changes_the_image_and_nothing_else() -> None:
    near = _simulate(2, defocus_um=0.8, noise=False)
    far = _simulate(2, defocus_um=3.0, noise=False)
    assert near.defocus_um == 0.8 and far.defocus_um == 3.0
    assert np.array_equal(near.picks.xy, far.picks.xy) and np.array_equal(near.junk, far.junk)
    difference = np.abs(near.image - far.image)[~near.junk].mean()
    assert difference > 0.2 * near.image[~near.junk].std()
    # More defocus moves the contrast to lower frequencies: particles are darker blobs.
    blur = RADIUS_PX / 2
    contrast = []
    for m in (near, far):
        low = ndimage.gaussian_filter(m.image.astype(np.float64), blur)
        at = low[np.round(m.picks.y).astype(int), np.round(m.picks.x).astype(int)]
        contrast.append(np.median(low[~m.junk]) - at.mean())
    assert contrast[1] > contrast[0] > 0


def test_make_dataset_writes_micrographs_truth_and_masks(tmp_path) -> None:
    folder = tmp_path / "data"
    paths = make_dataset(folder, 2, size=256, pixel_size=PIXEL, diameter=DIAMETER, seed=5)
    assert [p.name for p in paths] == ["synth_000.mrc", "synth_001.mrc"]
    images = []
    for i, path in enumerate(paths):
        root = path.stem
        expected = make_micrograph(256, PIXEL, DIAMETER, micrograph_seed(5, i), protein_seed=5)
        with mrcfile.open(path) as mrc:
            assert mrc.data.dtype == np.float32
            assert float(mrc.voxel_size.x) == pytest.approx(PIXEL)
        image = read_micrograph(path)
        assert image.pixel_size == pytest.approx(PIXEL)
        assert np.array_equal(image.data, expected.image)
        images.append(image.data)
        star = pick_path(folder, root, "truth")
        picks = read_picks(star)
        assert len(picks) == len(expected.picks) > 0
        assert np.allclose(picks.xy, expected.picks.xy, atol=1e-4)
        assert read_micrograph_names(star) == [f"{root}.mrc"]
        mask = read_mask(mask_path(folder, root))
        assert mask.shape == (round(256 * PIXEL / 8), round(256 * PIXEL / 8))
        assert np.array_equal(mask, junk_mask_8a(expected.junk, PIXEL))
    assert not np.allclose(images[0], images[1])  # each micrograph has its own seed


def test_junk_mask_at_8_angstrom_takes_the_majority() -> None:
    junk = np.zeros((8, 8), bool)
    junk[0:2, 0:2] = True  # a whole 2×2 block at 4 Å/px
    junk[2, 2] = True  # a quarter of one
    junk[4:6, 4] = True  # half of one: not more than half
    junk[6:8, 6:8] = True
    junk[7, 7] = False  # three quarters
    coarse = junk_mask_8a(junk, 4.0)
    expected = np.zeros((4, 4), bool)
    expected[0, 0] = expected[3, 3] = True
    assert np.array_equal(coarse, expected)
    # Sizes round as the network input does, for pixel sizes finer and coarser than 8 Å.
    assert junk_mask_8a(np.ones((100, 70), bool), 1.5).shape == (18, 14)  # even, as scaled_shape
    assert junk_mask_8a(np.ones((100, 70), bool), 1.5).all()
    upsampled = junk_mask_8a(np.eye(64, dtype=bool), 10.0)
    assert upsampled.shape == (80, 80) and upsampled.any() and not upsampled.all()


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda tmp: make_dataset(tmp, 0), "count"),
        (lambda tmp: make_micrograph(32), "size"),
        (lambda tmp: make_micrograph(256, pixel_size=0.0), "pixel size"),
        (lambda tmp: make_micrograph(256, pixel_size=float("nan")), "pixel size"),
        (lambda tmp: make_micrograph(256, diameter=5.0), "diameter"),
        (lambda tmp: make_micrograph(256, diameter=800.0), "diameter"),
        (lambda tmp: make_micrograph(128, pixel_size=1.0, diameter=100.0), "does not fit"),
        (lambda tmp: make_dataset(tmp, 1, size=128, pixel_size=1.0, diameter=100.0), "fit"),
        (lambda tmp: make_micrograph(256, seed=-1), "seed"),
        (lambda tmp: make_micrograph(shape=(256, 32)), "shape"),
        (lambda tmp: make_dataset(tmp / "file.txt", 1, size=64, diameter=30.0), "not a folder"),
    ],
)
def test_bad_arguments_are_user_errors(tmp_path, call, words) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match=words) as error:
        call(tmp_path)
    assert "\n" not in str(error.value)

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
from boxnet_tui.synth import (
    FAMILIES,
    STYLES,
    as_user_input,
    bin_image2,
    bin_mask,
    bin_picks,
    junk_mask_8a,
    make_dataset,
    make_micrograph,
    micrograph_seed,
    training_micrograph,
)

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
        (lambda tmp: make_micrograph(256, family="cube"), "family"),
        (lambda tmp: make_micrograph(256, coverage=0.0), "coverage"),
        (lambda tmp: make_micrograph(256, coverage=0.9), "coverage"),
        (lambda tmp: make_micrograph(256, debris="yes"), "debris"),
        (lambda tmp: make_micrograph(256, defocus_range=(3.0, 1.0)), "defocus range"),
        (lambda tmp: make_micrograph(256, dose_range=(5.0,)), "dose range"),
        (lambda tmp: make_micrograph(256, carbon_probability=1.5), "carbon"),
        (lambda tmp: training_micrograph(-1), "seed"),
        (lambda tmp: training_micrograph(0, diameter_range=(5.0, 100.0)), "diameter range"),
        (
            lambda tmp: as_user_input(np.zeros((8, 8)), 1.0, "jpeg", np.random.default_rng()),
            "style",
        ),
    ],
)
def test_bad_arguments_are_user_errors(tmp_path, call, words) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match=words) as error:
        call(tmp_path)
    assert "\n" not in str(error.value)


# --- variety: families, packing, debris, user styles, the pre-training recipe ---------------


def _projection(family: str, seed: int, rotation: np.ndarray, size: int = 160) -> np.ndarray:
    """Noise-free projected thickness of one 200 Å particle at 2 Å/px (100 px), centred."""
    protein = synth.protein_of(seed, 200.0, family)
    canvas = np.zeros((size, size), np.float32)
    synth._render_particles(
        canvas, protein, np.array([[size / 2, size / 2]]), rotation[None], 2.0, 1.0
    )
    return canvas


def _aspect(image: np.ndarray) -> float:
    """Ratio of the principal axes of the image's second moments (1 = round)."""
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    weights = image / image.sum()
    my, mx = (weights * rows).sum(), (weights * cols).sum()
    cov = [
        [(weights * (cols - mx) ** 2).sum(), (weights * (cols - mx) * (rows - my)).sum()],
        [(weights * (cols - mx) * (rows - my)).sum(), (weights * (rows - my) ** 2).sum()],
    ]
    small, large = np.linalg.eigvalsh(cov)
    return float(np.sqrt(large / small))


def _radial_profile(image: np.ndarray, radius_px: float) -> np.ndarray:
    """Mean of ``image`` in rings 0.05 radius wide around its centre, out to 1.5 radii."""
    n = image.shape[0]
    rows, cols = np.mgrid[:n, :n]
    ring = np.minimum((np.hypot(rows - n / 2, cols - n / 2) / radius_px * 20).astype(int), 30)
    return np.bincount(ring.ravel(), image.ravel(), 31) / np.bincount(ring.ravel(), minlength=31)


EDGE_ON_X = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # the particle's z into the image
END_ON_X = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # the particle's x out of it


def test_every_family_spans_its_diameter_around_its_centre_of_mass() -> None:
    for family in FAMILIES:
        for seed in range(3):
            protein = synth.protein_of(seed, 200.0, family)
            assert len(protein.sigmas) <= max(synth.MAX_FAMILY_BLOBS, 80)
            # The pick is the centre of mass.
            centre = (protein.masses[:, None] * protein.centres).sum(axis=0)
            assert np.abs(centre / protein.masses.sum()).max() < 1e-6
            reach = np.linalg.norm(protein.centres, axis=1) + 2 * protein.sigmas
            if family == "blobs":  # a stray blob may stick out: the 90 % quantile sets the scale
                assert np.quantile(reach, 0.9) <= 100.0 + 1e-6
            else:
                assert reach.max() == pytest.approx(100.0)


def test_families_change_the_particles_and_nothing_else() -> None:
    blobs = synth._simulate(256, 256, PIXEL, DIAMETER, 3, 0, noise=False)
    images = {}
    for family in FAMILIES[1:]:
        m = synth._simulate(256, 256, PIXEL, DIAMETER, 3, 0, noise=False, family=family)
        assert np.array_equal(m.picks.xy, blobs.picks.xy) and np.array_equal(m.junk, blobs.junk)
        difference = np.abs(m.image - blobs.image)[~m.junk]
        assert difference.max() > 0.1 * blobs.image[~m.junk].std()
        images[family] = m.image
    # ...and the families differ from one another.
    for a, b in [("shell", "ring"), ("rod", "flat"), ("ribosome", "shell")]:
        assert not np.allclose(images[a], images[b])


def test_a_shell_projects_to_a_ring_darker_at_its_rim() -> None:
    for seed in range(4):
        rotation = synth._rotations(np.random.default_rng(seed), 1)[0]
        shell = _radial_profile(_projection("shell", seed, rotation), 50)
        blobs = _radial_profile(_projection("blobs", seed, rotation), 50)
        # More protein along the rim (the wall edge-on) than through the centre (two walls).
        assert shell[6:20].max() > 1.3 * shell[:3].mean()
        assert 0.4 <= (6 + np.argmax(shell[6:20])) / 20 <= 0.95
        assert blobs[6:20].max() < 1.3 * blobs[:3].mean()


def test_a_ring_seen_along_its_axis_has_a_hole() -> None:
    for seed in range(4):
        top = _radial_profile(_projection("ring", seed, np.eye(3)), 50)
        assert top[6:20].max() > 3 * top[:3].mean()


def test_rods_and_plates_are_elongated_side_on_and_round_end_on() -> None:
    for seed in range(4):
        rod_side = _aspect(_projection("rod", seed, np.eye(3)))
        rod_end = _aspect(_projection("rod", seed, END_ON_X))
        assert rod_side > 1.8 and rod_end < 1.3
        plate_edge = _aspect(_projection("flat", seed, EDGE_ON_X))
        plate_face = _aspect(_projection("flat", seed, np.eye(3)))
        assert plate_edge > 2.5 and plate_face < 1.7
        assert _aspect(_projection("blobs", seed, np.eye(3))) < 1.8


def test_a_ribosome_has_two_unequal_dense_lobes() -> None:
    for seed in range(4):
        protein = synth.protein_of(seed, 200.0, "ribosome")
        # Along the axis through both lobes (z), the mass is skewed toward the large one.
        z, mass = protein.centres[:, 2], protein.masses / protein.masses.sum()
        spread = np.sqrt((mass * z**2).sum())
        assert (mass * z**3).sum() / spread**3 > 0.25
        # Dense: more protein in its thickest part than a blob protein of the same size.
        ribosome = _projection("ribosome", seed, np.eye(3)).max()
        assert ribosome > 1.1 * _projection("blobs", seed, np.eye(3)).max()


def test_coverage_sets_how_densely_particles_are_packed() -> None:
    for seed in range(2):
        counts = [
            len(synth._simulate(SIZE, SIZE, PIXEL, DIAMETER, seed, 0, coverage=c).picks)
            for c in (0.02, 0.1, 0.5)
        ]
        assert 1 <= counts[0] < counts[1] < counts[2]
        # Touching: most particles have a neighbour within 1.2 diameters.
        m = make_micrograph(SIZE, PIXEL, DIAMETER, seed=seed, coverage=0.5)
        gaps = np.hypot(*(m.picks.xy[:, None] - m.picks.xy[None]).transpose(2, 0, 1))
        np.fill_diagonal(gaps, np.inf)
        assert np.mean(gaps.min(axis=1) < 1.2 * 2 * RADIUS_PX) > 0.5


def test_debris_adds_aggregates_to_the_junk_and_broken_particles_to_neither() -> None:
    for seed in range(3):
        clean = make_micrograph(SIZE, PIXEL, DIAMETER, seed=seed)
        dirty = make_micrograph(SIZE, PIXEL, DIAMETER, seed=seed, debris=True)
        assert len(clean.broken) == 0 and len(dirty.broken) >= 1
        assert dirty.junk.sum() > clean.junk.sum() + np.pi * RADIUS_PX**2  # at least one copy
        assert not (clean.junk & ~dirty.junk).any()
        # Particles keep clear of aggregates as of all junk.
        clearance = ndimage.distance_transform_edt(~dirty.junk)
        rows, cols = np.round(dirty.picks.y).astype(int), np.round(dirty.picks.x).astype(int)
        assert clearance[rows, cols].min() >= RADIUS_PX - 1
        # Broken particles: not picks, not near one, and not junk.
        bx, by = dirty.broken.x, dirty.broken.y
        assert not dirty.junk[np.round(by).astype(int), np.round(bx).astype(int)].any()
        if len(dirty.picks):
            gaps = np.hypot(bx[:, None] - dirty.picks.x, by[:, None] - dirty.picks.y)
            assert gaps.min() >= 0.9 * 2 * RADIUS_PX - 1e-9


def test_broken_particles_are_fragments_rendered_where_reported() -> None:
    protein = synth.protein_of(1, DIAMETER, "blobs")
    junk = np.zeros((SIZE, SIZE), bool)
    junk[:, :100] = True
    particles = np.array([[300.0, 300.0], [400.0, 150.0]])
    phase = np.zeros((SIZE, SIZE), np.float32)
    xy = synth._add_broken(
        np.random.default_rng(0), junk, phase, protein, particles, PIXEL, DIAMETER
    )
    assert len(xy) >= 1 and (xy[:, 0] >= 100).all()
    assert np.hypot(xy[:, None, 0] - particles[:, 0], xy[:, None, 1] - particles[:, 1]).min() >= (
        0.9 * 2 * RADIUS_PX
    )
    whole = np.zeros_like(phase)
    synth._render_particles(whole, protein, xy, np.tile(np.eye(3), (len(xy), 1, 1)), PIXEL, 1.0)
    # Each fragment holds 30-60 % of the blobs, so less than the whole particle's protein.
    total = whole.sum() * synth.PHASE_PER_A
    assert 0.15 * total < phase.sum() < 0.8 * total
    for x, y in xy:
        window = phase[int(y) - 20 : int(y) + 21, int(x) - 20 : int(x) + 21]
        assert window.sum() > 0.1 * phase.sum() / len(xy)


@pytest.fixture(scope="module")
def plain_image() -> np.ndarray:
    return _simulate(5).image[:256, :256]


@pytest.mark.parametrize("style", STYLES)
def test_user_input_styles(style: str, plain_image: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    image, pixel_size = as_user_input(plain_image, PIXEL, style, rng)
    again, _ = as_user_input(plain_image, PIXEL, style, np.random.default_rng(4))
    assert image.tobytes() == again.tobytes()  # deterministic given the generator
    expected = {"int8": np.int8, "uint8": np.uint8, "uint16": np.uint16}.get(style, np.float32)
    assert image.dtype == expected
    assert pixel_size == (2 * PIXEL if style == "binned" else PIXEL)
    assert image.shape == ((128, 128) if style == "binned" else (256, 256))
    values = image.astype(np.float64)
    if style == "float":
        assert np.array_equal(image, plain_image)
    elif style == "int8":
        assert values.min() < -40 and values.max() > 40 and abs(np.median(values)) <= 1
    elif style == "uint8":
        assert values.min() < 90 and values.max() > 170 and abs(np.median(values) - 128) <= 1
    elif style == "uint16":
        assert values.max() > 40 and values.std() > 1
    elif style == "stretched":
        assert values.min() == 0 and values.max() == 255
        assert (values == 0).mean() >= 5e-4 and (values == 255).mean() >= 5e-4  # clipped tails
    elif style == "filtered":
        # Smoother: neighbouring pixels differ far less; the mean stays.
        assert np.diff(values).std() < 0.5 * np.diff(plain_image.astype(np.float64)).std()
        assert values.mean() == pytest.approx(plain_image.mean(), rel=1e-3)
    elif style == "binned":
        assert values.mean() == pytest.approx(plain_image.mean(), rel=1e-4)
    elif style == "gain":
        ratio = values / plain_image
        columns = np.median(ratio, axis=0)
        rows = np.median(ratio, axis=1)
        # A gain gradient and at least one defective line (column or row).
        line = np.abs(np.concatenate([columns / np.median(columns), rows / np.median(rows)]) - 1)
        assert line.max() > 0.15
        assert np.ptp(ndimage.median_filter(ratio, 15)) > 0.02


def test_binned_picks_and_masks_follow_the_image() -> None:
    rows, cols = np.mgrid[:64, :64]
    spot = np.exp(-((cols - 20.3) ** 2 + (rows - 41.7) ** 2) / (2 * 3.0**2))
    binned = bin_image2(spot)
    weights = binned / binned.sum()
    r, c = np.mgrid[:32, :32]
    moved = bin_picks(synth.Picks([20.3], [41.7]))
    assert (weights * c).sum() == pytest.approx(moved.x[0], abs=0.01)
    assert (weights * r).sum() == pytest.approx(moved.y[0], abs=0.01)
    mask = np.zeros((5, 5), bool)
    mask[0, 0:2] = True  # half of the first block
    mask[2, 2] = True  # a quarter of the last
    assert np.array_equal(bin_mask(mask), [[True, False], [False, False]])


def test_the_recipe_draws_variety_within_its_bounds() -> None:
    recipes = [synth._draw_recipe(seed, (60.0, 500.0)) for seed in range(400)]
    families = [r.family for r in recipes]
    styles = [r.style for r in recipes]
    assert set(families) == set(FAMILIES) and set(styles) == set(STYLES)
    assert max(FAMILIES, key=families.count) == "blobs"
    assert max(STYLES, key=styles.count) == "float"
    share = synth.TRAINING_DEBRIS_PROBABILITY
    assert share - 0.1 < np.mean([r.debris for r in recipes]) < share + 0.1
    for r in recipes:
        assert 60.0 <= r.diameter <= 500.0
        binning = 2 if r.style == "binned" else 1
        assert 25.0 <= r.diameter / r.pixel_size / binning <= 70.0
        assert max(r.shape) <= synth.TRAINING_MAX_SIDE and r.shape[0] % 2 == r.shape[1] % 2 == 0
        spans = np.array(r.shape) * r.pixel_size / r.diameter
        assert spans.max() <= 46.5 and (spans.min() >= 27.0 or max(r.shape) > 2300)
        assert 0.02 <= r.coverage <= synth.TRAINING_DENSE[1][1]
    coverages = np.array([r.coverage for r in recipes])
    assert coverages.min() < 0.04 and coverages.max() > 0.55
    # a third packed densely (0.3-0.6), beside the log-uniform draw's own 16 % above 0.3
    share, (low, _) = synth.TRAINING_DENSE
    assert share < np.mean(coverages >= low) < share + 0.2
    assert np.mean(coverages > synth.TRAINING_COVERAGE[1]) > 0.05  # denser than before
    ribosomes = [r.diameter for r in recipes if r.family == "ribosome"]
    assert min(ribosomes) >= 200.0 and max(ribosomes) <= 320.0
    narrow = [synth._draw_recipe(seed, (100.0, 120.0)).diameter for seed in range(50)]
    assert min(narrow) >= 100.0 and max(narrow) <= 120.0


def _small_recipe_seed(binned: bool) -> int:
    """A seed whose micrograph is small (fast), with debris, binned or not."""
    seeds = [
        seed
        for seed in range(300)
        if (synth._draw_recipe(seed, (60.0, 500.0)).style == "binned") == binned
        and synth._draw_recipe(seed, (60.0, 500.0)).debris
    ]
    return min(seeds, key=lambda seed: np.prod(synth._draw_recipe(seed, (60.0, 500.0)).shape))


@pytest.mark.parametrize("binned", [False, True])
def test_training_micrograph_is_deterministic_and_consistent(binned: bool) -> None:
    seed = _small_recipe_seed(binned)
    a = training_micrograph(seed)
    b = training_micrograph(seed)
    assert a.image.tobytes() == b.image.tobytes() and a.image.dtype == b.image.dtype
    assert np.array_equal(a.picks.xy, b.picks.xy) and np.array_equal(a.junk, b.junk)
    assert (a.family, a.style, a.diameter, a.pixel_size) == (
        b.family,
        b.style,
        b.diameter,
        b.pixel_size,
    )
    assert a.family in FAMILIES and (a.style == "binned") == binned
    # the stated diameter is the visible share of the simulated one
    visible = synth.TRAINING_VISIBLE_FRACTION
    assert 60.0 <= a.diameter <= 500.0
    assert 25.0 * visible <= a.diameter / a.pixel_size <= 70.0 * visible
    assert a.junk.shape == a.image.shape and a.junk.dtype == bool
    rows, cols = a.image.shape
    radius = a.diameter / a.pixel_size / 2
    assert len(a.picks) >= 1 and len(a.broken) >= 1
    for points in (a.picks, a.broken):
        assert points.x.min() >= radius - 1 and points.x.max() <= cols - radius
        assert points.y.min() >= radius - 1 and points.y.max() <= rows - radius
    # On the returned grid, picks keep clear of the (binned) junk.
    clearance = ndimage.distance_transform_edt(~a.junk)
    assert clearance[np.round(a.picks.y).astype(int), np.round(a.picks.x).astype(int)].min() >= (
        radius - 2
    )
    assert training_micrograph(seed + 1000).image.tobytes() != a.image.tobytes()


def _visibility(pixel: float, diameter: float, family: str, dose: float) -> float:
    """particle_visibility of one micrograph's particles at ``dose`` (signal over all noise)."""
    seen: list[float] = []
    measure = synth.particle_visibility

    def spy(*args: object) -> tuple[float, float, float]:
        signal, shot, ice = measure(*args)  # type: ignore[arg-type]
        seen.append(signal / float(np.hypot(shot, ice)))
        return signal, shot, ice

    synth.particle_visibility = spy  # type: ignore[assignment]
    try:
        synth._simulate(
            384, 384, pixel, diameter, 5, 6, family=family, dose_range=(dose, dose),
            carbon_probability=0.0, min_visibility=1e-6,
        )  # fmt: skip
    finally:
        synth.particle_visibility = measure
    return seen[0]


def test_visibility_grows_with_dose_and_size_and_is_lower_for_hollow_particles() -> None:
    low, high = _visibility(3.0, 120.0, "shell", 8.0), _visibility(3.0, 120.0, "shell", 32.0)
    # four times the electrons: shot noise halves (the ice's texture does not move)
    assert 1.5 * low < high <= 2.0 * low + 1e-6
    assert _visibility(3.0, 120.0, "blobs", 8.0) > low  # a solid particle of the same size
    assert _visibility(7.5, 300.0, "shell", 8.0) > 2 * low  # a larger one: more signal


def test_min_visibility_raises_the_dose_only_where_particles_would_be_hidden() -> None:
    def electrons(family: str, diameter: float, floor: float | None) -> float:
        pixel = diameter / 40
        m = synth._simulate(
            384, 384, pixel, diameter, 5, 6, family=family, dose_range=(6.0, 6.0),
            carbon_probability=0.0, min_visibility=floor,
        )  # fmt: skip
        return float(m.image.mean()) / pixel**2  # e/Å² (less what the ice stops)

    hidden = _visibility(90 / 40, 90.0, "ring", 6.0)
    assert hidden < 1.5
    raised = electrons("ring", 90.0, 1.5)
    assert raised > 1.5 * electrons("ring", 90.0, None)
    # a clearly visible particle keeps its dose
    assert _visibility(400 / 40, 400.0, "blobs", 6.0) > 1.5
    assert electrons("blobs", 400.0, 1.5) == pytest.approx(electrons("blobs", 400.0, None), 1e-4)


def test_make_micrograph_refuses_a_visibility_floor_that_is_not_above_zero() -> None:
    for bad in (0.0, -1.0, float("nan"), "high"):
        with pytest.raises(UserError, match="minimum visibility"):
            make_micrograph(64, PIXEL, DIAMETER, seed=1, min_visibility=bad)  # type: ignore[arg-type]
    floor = make_micrograph(256, PIXEL, DIAMETER, seed=1, dose_range=(1.0, 1.0), min_visibility=3)
    plain = make_micrograph(256, PIXEL, DIAMETER, seed=1, dose_range=(1.0, 1.0))
    assert floor.image.mean() > 2 * plain.image.mean()  # more electrons where they were hidden
    np.testing.assert_array_equal(floor.picks.xy, plain.picks.xy)


def _reach(family: str, seed: int) -> float:
    protein = synth.protein_of(seed, 200.0, family)
    return synth.protein_reach(protein, 200.0, seed)


def test_protein_reach_of_known_shapes() -> None:
    # one Gaussian blob: its projection holds 95 % within sigma * sqrt(-2 ln 0.05) = 2.448 sigma
    blob = synth._Protein(np.zeros((1, 3)), np.array([10.0]), np.array([1.0]))
    assert synth.protein_reach(blob, 100.0, 1) == pytest.approx(2.448 * 10 / 50, rel=0.03)
    # a thin spherical shell of radius R: the projected mass within r is 1 - sqrt(1 - r²/R²)
    points = np.random.default_rng(0).standard_normal((2000, 3))
    points *= 40.0 / np.linalg.norm(points, axis=1, keepdims=True)
    shell = synth._Protein(points, np.full(2000, 0.5), np.ones(2000))
    assert synth.protein_reach(shell, 100.0, 1) == pytest.approx(40 * 0.9987 / 50, rel=0.02)
    # the same seed, the same value
    assert synth.protein_reach(blob, 100.0, 3) == synth.protein_reach(blob, 100.0, 3)


def test_blobs_reach_is_the_blobs_familys_mean_and_shells_are_stated_larger() -> None:
    blobs = [_reach("blobs", seed) for seed in range(40)]
    assert np.mean(blobs) == pytest.approx(synth.BLOBS_REACH, abs=0.01)
    shells = [_reach("shell", seed) for seed in range(10)]
    assert min(shells) > max(np.mean(blobs), 0.8)  # mass at the rim reaches further
    # a shell is stated larger for its size than a blobs protein, both near their visible size
    shell = synth.stated_diameter(200.0, "shell", 3) / 200.0
    blob = synth.stated_diameter(200.0, "blobs", 3) / 200.0
    assert 0.8 < shell < 0.9 and 0.65 < blob < 0.85 and shell > blob

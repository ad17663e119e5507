"""Synthetic cryo-EM micrographs with ground truth: for the demo, the tests and pre-training.

What is simulated, in this order (lengths in Å unless a name ends in ``_px``):

1. One random "protein" per dataset, built from 3-D Gaussian blobs and scaled so that its
   largest extent is the particle diameter. Its ``family`` (:data:`FAMILIES`) sets the shape:
   ``blobs`` (the default: 30–80 blobs in one to three ellipsoidal domains), ``shell`` (a
   hollow cage such as apoferritin or a capsid: projections are rings, darker at the rim),
   ``ring`` (a ring or barrel with n-fold subunits: nanodiscs, GroEL, pores), ``rod`` (2.5–4
   times as long as wide), ``flat`` (a plate 8–20 % of its diameter thick) and ``ribosome``
   (two unequal lobes, denser than protein). Different orientations project differently.
2. Its projection in a uniformly random orientation per particle: the projection of a 3-D
   Gaussian is a 2-D Gaussian, so each particle is rendered exactly, as a separable sum
   (one small matrix product per particle, no loop over pixels or blobs).
3. Ice of smoothly varying thickness (a gradient plus slow undulations): thicker ice passes
   fewer electrons (inelastic mean free path) and adds more amorphous "texture".
4. Junk: on some micrographs a carbon edge (the region beyond a smooth, slightly wobbly
   circle, the rim of the hole) and a few ice-contamination blobs (large, dark, irregular).
   With ``debris``, also aggregates (clumps of 3–8 overlapping copies of the protein). All
   three are the junk mask; no particle is placed within one radius of junk. ``debris`` also
   adds broken particles (fragments of 30–60 % of the blobs), which are background: neither
   picks nor junk.
5. Particles are packed at a random coverage (sparse to crowded) or at ``coverage``.
6. The weak-phase image through the CTF (300 kV, Cs 2.7 mm, 7 % amplitude contrast, random
   defocus 0.8–3.0 µm with some astigmatism, a B-factor envelope), applied in Fourier space.
7. Shot noise on an effective (DQE-weighted) dose of 9–27 e/Å² (20–60 e/px at 1.5 Å/px), as
   its Gaussian equivalent (the Poisson counts are far above 10 per pixel). Particles are
   then barely visible by eye, as in real micrographs, and clear after a low-pass filter.

The image is in electrons per pixel (mean tens), float32. The same seed gives the same bytes,
and the defaults give the bytes they gave before the keywords for variety existed.

For pre-training a picker that must generalise, :func:`training_micrograph` draws all of the
above from one seed over wider ranges (diameters 60–500 Å, defocus 0.5–4 µm, dose 5–60
e/Å²), and hands the image over as a user might (:func:`as_user_input`, :data:`STYLES`: 8-
and 16-bit files, contrast stretches, low-passed, binned, uncorrected gain; in
:mod:`boxnet_tui.synth_styles`), stating three quarters of the simulated diameter (what is
visible of a typical protein). :func:`stated_diameter` is the diameter a user would state for
a given protein: more for hollow shells, whose mass sits at the rim.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.fft
from scipy import ndimage, spatial

from boxnet_tui.errors import UserError
from boxnet_tui.imaging import scaled_shape
from boxnet_tui.io.layout import mask_path, pick_path
from boxnet_tui.io.masks import MASK_PIXEL_SIZE, write_mask
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.synth_styles import STYLES, as_user_input, bin_image2, bin_mask, bin_picks

__all__ = [
    "FAMILIES",
    "STYLES",
    "SynthMicrograph",
    "TrainingMicrograph",
    "as_user_input",
    "bin_image2",
    "bin_mask",
    "bin_picks",
    "junk_mask_8a",
    "make_dataset",
    "make_micrograph",
    "micrograph_seed",
    "training_micrograph",
]

VOLTAGE_KV = 300.0
CS_MM = 2.7
AMPLITUDE_CONTRAST = 0.07
DEFOCUS_RANGE_UM = (0.8, 3.0)
ASTIGMATISM_MAX_UM = 0.1  # difference of the two principal defoci
B_FACTOR_RANGE = (40.0, 120.0)  # Å², the envelope of drift, coherence and detector
DOSE_PER_A2 = (9.0, 27.0)  # effective e/Å²: 20–60 e/px at 1.5 Å/px
MIN_DIAMETER, MAX_DIAMETER = 10.0, 700.0
MIN_SIZE = 64
TRUTH_SUFFIX = "truth"

# Phase shift per Å of protein thickness: the interaction constant at 300 kV
# (7.3e-4 rad/(V·Å)) times the ~1.5 V by which protein's mean inner potential exceeds ice's.
PHASE_PER_A = 1.1e-3
PROTEIN_FILL = 0.45  # share of the diameter's sphere that holds protein (not a solid ball)
INELASTIC_MFP = 3500.0  # Å at 300 kV: the mean intensity falls as exp(-thickness / MFP)
ICE_THICKNESS = (250.0, 700.0)  # mean over a micrograph; never thinner than 1.3 diameters
# Phase noise of amorphous ice per pixel, at 500 Å thick and 1.5 Å/px (it scales as
# sqrt(thickness) / pixel size): about a third of the shot noise, so the power spectrum shows
# Thon rings and the background looks like ice rather than white noise.
ICE_TEXTURE = 0.08
CARBON_PROBABILITY = 0.35
CONTAMINATION_MEAN = 0.8  # blobs per micrograph (Poisson), at most 4
COVERAGE_RANGE = (0.03, 0.45)  # share of the free area under particle discs: sparse to crowded
MIN_DISTANCE = 0.9  # closest two particle centres may come, in diameters (some touch)

_PROTEIN_TAG = 0x70726F74  # keeps the protein's random stream apart from a micrograph's
_RECIPE_TAG = 0x72656369  # and the training recipe's apart from both

# Protein families: "blobs" is the random blob protein above; the others are shapes a generic
# picker must also find (see _make_protein).
FAMILIES = ("blobs", "shell", "ring", "rod", "flat", "ribosome")
# Share of a wall's, rod's or plate's envelope that holds protein: the envelope is tight
# around the blobs, so it is fuller than the whole-sphere PROTEIN_FILL of "blobs".
WALL_FILL = 0.7
# Ribosomes: compact lobes (0.7 full, as walls) of RNA and protein, and RNA scatters about
# 1.4 times as much as protein per volume.
RIBOSOME_FILL = 1.0
MAX_FAMILY_BLOBS = 240  # rendering time grows with the blob count; walls need the most
COVERAGE_LIMITS = (0.005, 0.6)  # what `coverage` accepts (0.6 is about the packing limit)
AGGREGATE_AREA = 400.0  # one aggregate more (Poisson mean) per this many diameters² of image
VISIBILITY_PIXELS = 20.0  # particle_visibility's view: the diameter this many pixels across
ICE_SHARE = 0.7  # of the noise min_visibility allows, the most the ice's texture may take

# The pre-training recipe (training_micrograph): wider than a single dataset's defaults.
TRAINING_DIAMETER_PX = (25.0, 70.0)  # the particle across, in pixels of the returned image
TRAINING_BINNED_DIAMETER_PX = (25.0, 45.0)  # the same where the style bins (see _draw_recipe)
TRAINING_SPAN = (28.0, 45.0)  # diameters per side of the micrograph
TRAINING_MAX_SIDE = 2600  # px of the simulated image (before any binning): bounds the time
TRAINING_COVERAGE = (0.02, 0.5)  # log-uniform: sparse to touching
# And this share of micrographs packed uniformly in this range. Measured (bench_families, visible
# particles): with the log-uniform draw alone (16 % above 0.3), small shells packed at 0.45 were
# taken for background (F1 0.19 at 130 Å, 0.62 at 250 Å); with it, 0.49 and 0.76 (the shipped
# models 0.32 -> 0.89, 0.71 -> 0.86), real leave-one-protein-out F1 unchanged (0.806, 0.844).
TRAINING_DENSE = (0.35, (0.3, 0.6))
_DENSE_TAG = 0x64656E73  # the dense draw's own stream: the recipe's other draws stay as they were
TRAINING_DEFOCUS_UM = (0.5, 4.0)
TRAINING_DOSE_PER_A2 = (5.0, 60.0)
TRAINING_ICE_THICKNESS = (150.0, 1000.0)
TRAINING_CARBON_PROBABILITY = 0.5
# aggregates are junk: on many micrographs they teach that touching real particles are junk
TRAINING_DEBRIS_PROBABILITY = 0.3
# The stated diameter of a training micrograph is this share of the simulated one: the
# projected density fades well inside the outermost blob's 2 sigma, and users (and the real
# label sets) state the diameter of what they see. Without it the synthetic particles looked
# two thirds of their stated size, real ones their full size, and real ribosomes became junk.
TRAINING_VISIBLE_FRACTION = 0.75
# That share fits a typical blobs protein; a hollow shell, whose mass sits at its rim, looks
# larger for its simulated size (stated_diameter: 0.84 of it). Stating each training protein
# by its own reach instead was measured (stop 30, README) and not kept: synthetic families at
# their visible diameters rose (bench_families 0.921 -> 0.932, 0.893 -> 0.908), real proteins
# never seen stayed (0.834 -> 0.831, 0.839 -> 0.840), but the seen beta-galactosidase lost
# 0.008-0.027 at the default threshold in three pairs of models.
VISIBLE_MASS_SHARE = 0.95
BLOBS_REACH = 0.766  # mean protein_reach of 200 blobs proteins (a test measures it again)
_REACH_TAG = 0x72656163
TRAINING_RIBOSOME_DIAMETER = (200.0, 320.0)  # ribosomes are large, where the range allows
_FAMILY_WEIGHTS = {"blobs": 0.35, "shell": 0.13, "ring": 0.13, "rod": 0.13, "flat": 0.13}
_FAMILY_WEIGHTS["ribosome"] = 1.0 - sum(_FAMILY_WEIGHTS.values())
_STYLE_WEIGHTS = {style: 0.1 for style in STYLES}
_STYLE_WEIGHTS["float"] = 1.0 - 0.1 * (len(STYLES) - 1)


@dataclass
class SynthMicrograph:
    """One synthetic micrograph and its ground truth."""

    image: np.ndarray  # float32 (rows, cols), electrons per pixel
    picks: Picks  # particle centres in pixels, x = column, y = row
    junk: np.ndarray  # bool (rows, cols), True = junk (carbon, contamination)
    pixel_size: float  # Å/px
    defocus_um: float  # mean defocus (underfocus positive)
    # Centres of broken particles (``debris=True``): rendered, but neither picks nor junk.
    broken: Picks = field(default_factory=Picks)


@dataclass
class TrainingMicrograph:
    """One micrograph of the pre-training recipe (:func:`training_micrograph`)."""

    image: np.ndarray  # (rows, cols), dtype and scale of ``style``
    picks: Picks  # particle centres in pixels of ``image``
    junk: np.ndarray  # bool, same shape as ``image``
    pixel_size: float  # Å/px of ``image``
    diameter: float  # Å, stated: TRAINING_VISIBLE_FRACTION of the simulated one
    family: str  # one of FAMILIES
    style: str  # one of STYLES
    broken: Picks = field(default_factory=Picks)  # broken particles: hard negatives


@dataclass(frozen=True)
class _Protein:
    centres: np.ndarray  # (n, 3) Å, around the centre of mass
    sigmas: np.ndarray  # (n,) Å
    masses: np.ndarray  # (n,) Å³ of protein in each blob


@dataclass(frozen=True)
class _Optics:
    defocus_um: float
    astigmatism_um: float
    astigmatism_angle: float  # rad, direction of the larger defocus
    b_factor: float  # Å²
    dose_per_a2: float


def make_micrograph(
    size: int = 2048,
    pixel_size: float = 1.5,
    diameter: float = 180.0,
    seed: int = 0,
    *,
    protein_seed: int | None = None,
    shape: tuple[int, int] | None = None,
    family: str = "blobs",
    coverage: float | None = None,
    debris: bool = False,
    defocus_range: tuple[float, float] = DEFOCUS_RANGE_UM,
    dose_range: tuple[float, float] = DOSE_PER_A2,
    ice_range: tuple[float, float] = ICE_THICKNESS,
    carbon_probability: float = CARBON_PROBABILITY,
    min_visibility: float | None = None,
) -> SynthMicrograph:
    """Simulate one micrograph of ``size``² pixels (or ``shape`` = (rows, cols)).

    The keywords after ``shape`` widen the variety; their defaults give the same bytes as
    before they existed.

    Args:
        size: side in pixels, used when ``shape`` is None.
        pixel_size: Å/px.
        diameter: particle diameter in Å (10–700): the particle's largest extent.
        seed: everything about this micrograph (defocus, ice, junk, positions, noise).
        protein_seed: the 3-D protein (default ``seed``); a dataset shares one.
        shape: (rows, cols), overriding ``size``.
        family: the kind of protein, one of :data:`FAMILIES` (see the module docstring).
        coverage: share of the free area under particle discs (0.005–0.6: 0.02 is sparse,
            0.5 touching); None draws it from ``COVERAGE_RANGE``.
        debris: add aggregates (clumps of the protein, in the junk mask) and broken
            particles (fragments, neither picks nor junk; their centres in ``broken``).
        defocus_range: µm, the mean defocus is drawn uniformly from it.
        dose_range: effective e/Å², drawn uniformly.
        ice_range: Å, the mean ice thickness is drawn uniformly (never below 1.3 diameters).
        carbon_probability: chance of a carbon edge.
        min_visibility: if given (> 0), the dose is raised (and the ice's texture thinned)
            where the particles' :func:`particle_visibility` would fall below it.

    Raises:
        UserError: an argument is out of range, or the particle does not fit.
    """
    rows, cols = _check_shape(size, shape)
    if min_visibility is not None and not (_is_number(min_visibility) and min_visibility > 0):
        raise UserError(f"minimum visibility {min_visibility!r} must be a number above 0")
    _check_optics(rows, cols, pixel_size, diameter)
    _check_seed(seed, "seed")
    if protein_seed is not None:
        _check_seed(protein_seed, "protein seed")
    _check_variety(family, coverage, debris, carbon_probability)
    ranges = {
        "defocus_range": _check_range(defocus_range, "defocus range (µm)", 0.05, 10.0),
        "dose_range": _check_range(dose_range, "dose range (e/Å²)", 0.1, 1000.0),
        "ice_range": _check_range(ice_range, "ice thickness range (Å)", 10.0, 10000.0),
    }
    return _simulate(
        rows,
        cols,
        float(pixel_size),
        float(diameter),
        seed,
        seed if protein_seed is None else protein_seed,
        family=family,
        coverage=None if coverage is None else float(coverage),
        debris=bool(debris),
        carbon_probability=float(carbon_probability),
        min_visibility=None if min_visibility is None else float(min_visibility),
        **ranges,
    )


def make_dataset(
    folder: str | os.PathLike[str],
    count: int,
    size: int = 2048,
    pixel_size: float = 1.5,
    diameter: float = 180.0,
    seed: int = 0,
) -> list[Path]:
    """Write ``count`` micrographs of one protein to ``folder``, with truth picks and masks.

    For each ``root = synth_{i:03d}``: ``<root>.mrc`` (float32, pixel size in the header),
    ``matching/<root>_truth.star`` and ``mask/<root>.tif`` (the junk mask at 8 Å/px, see
    :func:`junk_mask_8a`). Micrograph ``i`` equals
    ``make_micrograph(size, pixel_size, diameter, micrograph_seed(seed, i), protein_seed=seed)``.

    Returns:
        The micrograph paths, in order.

    Raises:
        UserError: an argument is out of range, or the particle does not fit.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise UserError(f"count must be a whole number of at least 1, got {count!r}")
    rows, cols = _check_shape(size, None)
    _check_optics(rows, cols, pixel_size, diameter)
    _check_seed(seed, "seed")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    paths = []
    for i in range(int(count)):
        root = f"synth_{i:03d}"
        micrograph = _simulate(
            rows, cols, float(pixel_size), float(diameter), micrograph_seed(seed, i), seed
        )
        path = folder / f"{root}.mrc"
        try:
            write_micrograph(path, micrograph.image, micrograph.pixel_size)
            write_picks(pick_path(folder, root, TRUTH_SUFFIX), micrograph.picks, path.name)
            write_mask(mask_path(folder, root), junk_mask_8a(micrograph.junk, pixel_size))
        except OSError as error:
            raise UserError(f"{folder}: cannot write there ({error.strerror or error})") from None
        paths.append(path)
    return paths


@dataclass(frozen=True)
class _Recipe:
    """Everything :func:`training_micrograph` draws from its seed before simulating."""

    diameter: float  # Å
    family: str
    style: str
    pixel_size: float  # Å/px of the simulation (half the returned one when ``style`` bins)
    shape: tuple[int, int]  # of the simulation
    coverage: float
    debris: bool
    micrograph_seed: int
    protein_seed: int
    style_seed: int


def training_micrograph(
    seed: int, *, diameter_range: tuple[float, float] = (60.0, 500.0)
) -> TrainingMicrograph:
    """One micrograph of the pre-training recipe: everything drawn from ``seed``.

    A diameter log-uniform in ``diameter_range`` (Å; ribosomes 200–320 Å where the range
    allows), a family (``blobs`` most often), a pixel size that makes the particle
    25–70 px across in the returned image, a side of 28–45 diameters (at most
    ``TRAINING_MAX_SIDE`` px simulated), coverage log-uniform 0.02–0.5 (uniform 0.3–0.6 on
    a third of them), debris on half, wider defocus (0.5–4 µm), dose (5–60 e/Å²), ice
    (150–1000 Å) and carbon (50 %), and a :data:`STYLES` style (``float`` most often).
    Where the style bins, the simulation runs at half the pixel size and the picks, broken
    particles and junk mask are moved onto the binned grid. The same seed gives the same bytes.

    Raises:
        UserError: ``seed`` or ``diameter_range`` is out of range.
    """
    _check_seed(seed, "seed")
    low, high = _check_range(diameter_range, "diameter range (Å)", MIN_DIAMETER, MAX_DIAMETER)
    simulated = (
        low / TRAINING_VISIBLE_FRACTION,
        min(MAX_DIAMETER, high / TRAINING_VISIBLE_FRACTION),
    )
    recipe = _draw_recipe(int(seed), simulated)
    m = _simulate(
        *recipe.shape,
        recipe.pixel_size,
        recipe.diameter,
        recipe.micrograph_seed,
        recipe.protein_seed,
        family=recipe.family,
        coverage=recipe.coverage,
        debris=recipe.debris,
        defocus_range=TRAINING_DEFOCUS_UM,
        dose_range=TRAINING_DOSE_PER_A2,
        ice_range=TRAINING_ICE_THICKNESS,
        carbon_probability=TRAINING_CARBON_PROBABILITY,
    )
    image, pixel_size = as_user_input(
        m.image, m.pixel_size, recipe.style, np.random.default_rng(recipe.style_seed)
    )
    picks, junk, broken = m.picks, m.junk, m.broken
    if recipe.style == "binned":
        picks, junk, broken = bin_picks(picks), bin_mask(junk), bin_picks(broken)
    stated = recipe.diameter * TRAINING_VISIBLE_FRACTION
    return TrainingMicrograph(
        image, picks, junk, pixel_size, stated, recipe.family, recipe.style, broken
    )


def stated_diameter(diameter: float, family: str, protein_seed: int) -> float:
    """The diameter (Å) a user would state for the protein of ``family`` and ``protein_seed``
    simulated at ``diameter``: its visible size (TRAINING_VISIBLE_FRACTION for a protein that
    reaches as far as a typical blobs protein, in proportion to its reach otherwise)."""
    protein = protein_of(protein_seed, diameter, family)
    reach = protein_reach(protein, diameter, protein_seed)
    return diameter * TRAINING_VISIBLE_FRACTION * reach / BLOBS_REACH


def protein_reach(protein: _Protein, diameter: float, seed: int, samples: int = 20_000) -> float:
    """How far the protein's projected density reaches, as a share of its radius: the radius
    around its centre of mass that holds VISIBLE_MASS_SHARE of its mass seen from a random
    direction, over all directions (drawn from ``seed``: the same protein, the same value)."""
    rng = np.random.default_rng([seed, _REACH_TAG])
    blob = rng.choice(len(protein.masses), samples, p=protein.masses / protein.masses.sum())
    points = protein.centres[blob] + rng.standard_normal((samples, 3)) * protein.sigmas[blob, None]
    view = rng.standard_normal((samples, 3))
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    along = np.einsum("ij,ij->i", points, view)
    across = np.sqrt(np.maximum((points * points).sum(axis=1) - along * along, 0.0))
    return float(np.quantile(across, VISIBLE_MASS_SHARE)) / (diameter / 2)


def _draw_recipe(seed: int, diameter_range: tuple[float, float]) -> _Recipe:
    """The random choices of :func:`training_micrograph` (cheap: no simulation)."""
    rng = np.random.default_rng([seed, _RECIPE_TAG])
    low, high = diameter_range
    diameter = _log_uniform(rng, low, high)
    families = list(_FAMILY_WEIGHTS)
    family = families[int(rng.choice(len(families), p=list(_FAMILY_WEIGHTS.values())))]
    small, large = TRAINING_RIBOSOME_DIAMETER
    if family == "ribosome" and max(low, small) <= min(high, large):
        diameter = _log_uniform(rng, max(low, small), min(high, large))
    styles = list(_STYLE_WEIGHTS)
    style = styles[int(rng.choice(len(styles), p=list(_STYLE_WEIGHTS.values())))]
    diameter_px = float(rng.uniform(*TRAINING_DIAMETER_PX))
    if style == "binned":
        # Simulated at twice the size and binned, the particle 25-45 px after binning: the
        # simulation, not only the result, must stay under the side limit.
        low_px, high_px = TRAINING_DIAMETER_PX
        small_px, large_px = TRAINING_BINNED_DIAMETER_PX
        diameter_px = 2 * (
            small_px + (diameter_px - low_px) * (large_px - small_px) / (high_px - low_px)
        )
    span = rng.uniform(*TRAINING_SPAN, 2)
    shape = tuple(_fast_side(n * diameter_px, TRAINING_MAX_SIDE) for n in span)
    return _Recipe(
        diameter=diameter,
        family=family,
        style=style,
        pixel_size=diameter / diameter_px,
        shape=(shape[0], shape[1]),
        coverage=_training_coverage(rng, seed),
        debris=bool(rng.random() < TRAINING_DEBRIS_PROBABILITY),
        micrograph_seed=int(rng.integers(0, 2**63)),
        protein_seed=int(rng.integers(0, 2**63)),
        style_seed=int(rng.integers(0, 2**63)),
    )


def _training_coverage(rng: np.random.Generator, seed: int) -> float:
    """Log-uniform over TRAINING_COVERAGE or, on TRAINING_DENSE's share, uniform in its range."""
    coverage = _log_uniform(rng, *TRAINING_COVERAGE)
    dense = np.random.default_rng([seed, _DENSE_TAG])
    share, (low, high) = TRAINING_DENSE
    return float(dense.uniform(low, high)) if dense.random() < share else coverage


def _fast_side(n: float, limit: int) -> int:
    """The even side nearest ``n`` (at most ``limit``) whose FFT is fast (2-, 3- and
    5-smooth): a side of 2498 = 2·1249 takes several times as long to simulate as 2500."""

    def fast(side: int) -> bool:
        return side % 2 == 0 and scipy.fft.next_fast_len(side, real=True) == side

    below = max(MIN_SIZE, min(int(n), limit))
    while below > MIN_SIZE and not fast(below):
        below -= 1
    above = max(MIN_SIZE, math.ceil(n))
    while not fast(above):
        above += 1
    return above if above <= limit and above - n < n - below else below


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def micrograph_seed(seed: int, index: int) -> int:
    """The seed of micrograph ``index`` of the dataset made with ``seed`` (independent streams)."""
    child = np.random.SeedSequence(seed).spawn(index + 1)[index]
    low, high = child.generate_state(2, np.uint32)
    return int(low) | (int(high) << 32)


def junk_mask_8a(junk: np.ndarray, pixel_size: float) -> np.ndarray:
    """The junk mask at 8 Å/px, shaped as :func:`imaging.scaled_shape` shapes the micrograph.

    A coarse pixel is junk when more than half of the fine pixels it covers are (area
    fraction > 0.5, what an area-weighted rescale followed by Warp's ``mask > 0.5`` gives).
    Where the micrograph is coarser than 8 Å/px, the nearest fine pixel is taken.
    """
    junk = np.asarray(junk, dtype=bool)
    out_rows, out_cols = scaled_shape(junk.shape, pixel_size, MASK_PIXEL_SIZE)
    row_starts = _block_starts(junk.shape[0], out_rows)
    col_starts = _block_starts(junk.shape[1], out_cols)
    counts = np.add.reduceat(junk.view(np.uint8), row_starts, axis=0, dtype=np.int32)
    counts = np.add.reduceat(counts, col_starts, axis=1)
    # reduceat gives the single element at a start when the next start is not beyond it,
    # so such a block is one pixel.
    row_sizes = np.maximum(np.diff(np.append(row_starts, junk.shape[0])), 1)
    col_sizes = np.maximum(np.diff(np.append(col_starts, junk.shape[1])), 1)
    return counts * 2 > row_sizes[:, None] * col_sizes[None, :]


def _block_starts(n_in: int, n_out: int) -> np.ndarray:
    return np.minimum(np.floor(np.arange(n_out) * (n_in / n_out)).astype(np.intp), n_in - 1)


# --- validation ------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_shape(size: int, shape: tuple[int, int] | None) -> tuple[int, int]:
    if shape is None:
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise UserError(f"size must be a whole number of pixels, got {size!r}")
        if size < MIN_SIZE:
            raise UserError(f"size must be at least {MIN_SIZE} px, got {size}")
        return int(size), int(size)
    if len(shape) != 2 or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape
    ):
        raise UserError(f"shape must be two whole numbers (rows, columns), got {shape!r}")
    if min(shape) < MIN_SIZE:
        raise UserError(f"each side of the shape must be at least {MIN_SIZE} px, got {shape}")
    return int(shape[0]), int(shape[1])


def _check_optics(rows: int, cols: int, pixel_size: float, diameter: float) -> None:
    if not _is_number(pixel_size) or not math.isfinite(pixel_size) or pixel_size <= 0:
        raise UserError(f"pixel size must be a positive number of Å, got {pixel_size!r}")
    if (
        not _is_number(diameter)
        or not math.isfinite(diameter)
        or not MIN_DIAMETER <= diameter <= MAX_DIAMETER
    ):
        raise UserError(
            f"particle diameter must be between {MIN_DIAMETER:g} and {MAX_DIAMETER:g} Å, "
            f"got {diameter!r}"
        )
    diameter_px = diameter / pixel_size
    if diameter_px < 2:
        raise UserError(
            f"a {diameter:g} Å particle is {diameter_px:.2g} px at {pixel_size:g} Å/px; "
            "it must be at least 2 px across (use a smaller pixel size)"
        )
    if 2 * diameter_px > min(rows, cols):
        raise UserError(
            f"a {diameter:g} Å particle is {diameter_px:.0f} px at {pixel_size:g} Å/px and "
            f"does not fit in a {rows}×{cols} px micrograph (each side must hold two "
            "diameters); use a larger size or pixel size"
        )


def _check_seed(seed: int, name: str) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"{name} must be a whole number of at least 0, got {seed!r}")


def _check_variety(
    family: str, coverage: float | None, debris: bool, carbon_probability: float
) -> None:
    if family not in FAMILIES:
        raise UserError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    low, high = COVERAGE_LIMITS
    if coverage is not None and (
        not _is_number(coverage) or not math.isfinite(coverage) or not low <= coverage <= high
    ):
        raise UserError(f"coverage must be between {low:g} and {high:g}, got {coverage!r}")
    if not isinstance(debris, (bool, np.bool_)):
        raise UserError(f"debris must be True or False, got {debris!r}")
    if not _is_number(carbon_probability) or not 0 <= carbon_probability <= 1:
        raise UserError(f"carbon probability must be between 0 and 1, got {carbon_probability!r}")


def _check_range(
    bounds: tuple[float, float], name: str, low: float, high: float
) -> tuple[float, float]:
    try:
        first, second = bounds
    except (TypeError, ValueError):
        raise UserError(f"{name} must be two numbers (low, high), got {bounds!r}") from None
    if not (_is_number(first) and _is_number(second) and low <= first <= second <= high):
        raise UserError(
            f"{name} must be two numbers with {low:g} <= low <= high <= {high:g}, got {bounds!r}"
        )
    return float(first), float(second)


# --- the simulation --------------------------------------------------------------------------


def _simulate(
    rows: int,
    cols: int,
    pixel_size: float,
    diameter: float,
    seed: int,
    protein_seed: int,
    *,
    defocus_um: float | None = None,
    particles: bool = True,
    noise: bool = True,
    family: str = "blobs",
    coverage: float | None = None,
    debris: bool = False,
    defocus_range: tuple[float, float] = DEFOCUS_RANGE_UM,
    dose_range: tuple[float, float] = DOSE_PER_A2,
    ice_range: tuple[float, float] = ICE_THICKNESS,
    carbon_probability: float = CARBON_PROBABILITY,
    min_visibility: float | None = None,
) -> SynthMicrograph:
    """The whole simulation; the keywords switch parts off for tests, leaving the rest equal.

    ``min_visibility``: where the particles' :func:`particle_visibility` falls below it, the
    dose is raised until it does not.

    Each part draws from its own random stream, so switching one off or changing the defocus
    changes nothing else (same positions, ice, junk and noise). ``particles=False`` drops the
    picked particles only; debris stays. The keywords from ``family`` on are those of
    :func:`make_micrograph`, unchecked.
    """
    protein = protein_of(protein_seed, diameter, family)
    # Children of a SeedSequence do not depend on how many are spawned, so the debris stream
    # (the seventh) leaves the first six, and so the default bytes, as they were.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    rng_optics, rng_ice, rng_junk, rng_place, rng_texture, rng_noise, rng_debris = streams
    shape = (rows, cols)

    optics = _draw_optics(rng_optics, defocus_range, dose_range)
    if defocus_um is not None:
        optics = _Optics(
            defocus_um,
            optics.astigmatism_um,
            optics.astigmatism_angle,
            optics.b_factor,
            optics.dose_per_a2,
        )

    thickness = _ice_thickness(rng_ice, shape, diameter, ice_range)
    transmission = np.exp(thickness * np.float32(-1.0 / INELASTIC_MFP))
    # Phase noise of amorphous material per pixel: ∝ sqrt(thickness), ∝ 1 / pixel size
    # (it averages over the pixel's area).
    texture = np.sqrt(thickness * np.float32(1 / 500)) * np.float32(ICE_TEXTURE * 1.5 / pixel_size)
    del thickness
    phase = np.zeros(shape, np.float32)
    junk = np.zeros(shape, bool)
    if rng_junk.random() < carbon_probability:
        _add_carbon(rng_junk, junk, transmission, texture)
    n_blobs = min(int(rng_junk.poisson(CONTAMINATION_MEAN)), 4)
    for _ in range(n_blobs):
        _add_contamination(rng_junk, junk, transmission, phase, diameter / pixel_size)
    if debris:  # before the particles, which keep clear of aggregates as of all junk
        _add_aggregates(rng_debris, junk, phase, protein, pixel_size, diameter)

    radius_px = diameter / pixel_size / 2
    xy = _place_particles(rng_place, junk, radius_px, coverage)
    rotations = _rotations(rng_place, len(xy))
    if particles and len(xy) and min_visibility is None:
        _render_particles(phase, protein, xy, rotations, pixel_size, PHASE_PER_A)
    elif particles and len(xy):
        alone = np.zeros(shape, np.float32)  # their phase alone, to measure their signal
        _render_particles(alone, protein, xy, rotations, pixel_size, PHASE_PER_A)
        signal, shot, ice = particle_visibility(
            alone, len(xy), diameter, pixel_size, optics, transmission, texture
        )
        allowed = signal / min_visibility  # the most noise that leaves them visible
        if math.hypot(shot, ice) > allowed:
            # Thinner-looking ice where it alone would hide them, then more electrons.
            if ice > ICE_SHARE * allowed:
                texture *= np.float32(ICE_SHARE * allowed / ice)
                ice = ICE_SHARE * allowed
            dose = optics.dose_per_a2 * (shot**2 / (allowed**2 - ice**2))
            optics = replace(optics, dose_per_a2=dose)
        phase += alone
        del alone
    broken = np.zeros((0, 2))
    if debris:
        broken = _add_broken(rng_debris, junk, phase, protein, xy, pixel_size, diameter)

    phase += texture * rng_texture.standard_normal(shape, dtype=np.float32)
    del texture
    spectrum = scipy.fft.rfft2(phase, workers=-1)
    del phase
    spectrum *= _ctf(shape, pixel_size, optics)
    contrast = scipy.fft.irfft2(spectrum, s=shape, workers=-1)
    del spectrum

    dose_px = np.float32(optics.dose_per_a2 * pixel_size**2)
    # Weak-phase image: I = dose · transmission · (1 + 2·CTF⊛phase); the 2 is inside _ctf.
    contrast += np.float32(1)
    contrast *= transmission
    contrast *= dose_px
    image = np.maximum(contrast, np.float32(0), out=contrast)
    if noise:
        shot = np.sqrt(image)
        shot *= rng_noise.standard_normal(shape, dtype=np.float32)
        image += shot
    picks = Picks(xy[:, 0], xy[:, 1]) if len(xy) else Picks()
    return SynthMicrograph(
        np.ascontiguousarray(image, dtype=np.float32),
        picks,
        junk,
        pixel_size,
        optics.defocus_um,
        Picks(broken[:, 0], broken[:, 1]) if len(broken) else Picks(),
    )


def particle_visibility(
    particles_phase: np.ndarray,
    count: int,
    diameter: float,
    pixel_size: float,
    optics: _Optics,
    transmission: np.ndarray,
    texture: np.ndarray,
) -> tuple[float, float, float]:
    """How clearly ``count`` particles (their phase alone, ``particles_phase``) stand out of
    the noise, as a network that sees the particle VISIBILITY_PIXELS across sees them.

    Returns (signal, shot noise, ice noise), all in phase units blurred to that pixel size (a
    Gaussian of one such pixel), through the CTF: the signal is the root mean square over the
    particles' discs; the shot noise falls as 1 / sqrt(dose), the ice's amorphous texture
    (``texture``, its phase noise per pixel) passes the CTF as the particles do.
    """
    rows, cols = particles_phase.shape
    blur = diameter / VISIBILITY_PIXELS / pixel_size  # micrograph pixels per such pixel
    ky = scipy.fft.fftfreq(rows).astype(np.float32)[:, None]
    kx = scipy.fft.rfftfreq(cols).astype(np.float32)[None, :]
    transfer = _ctf((rows, cols), pixel_size, optics)
    transfer *= np.exp(np.float32(-2 * math.pi**2 * blur**2) * (ky * ky + kx * kx))
    spectrum = scipy.fft.rfft2(particles_phase, workers=-1)
    spectrum *= transfer
    signal = scipy.fft.irfft2(spectrum, s=(rows, cols), workers=-1)
    area = count * math.pi * (diameter / 2 / pixel_size) ** 2
    rms = math.sqrt(float(np.sum(signal.astype(np.float64) ** 2)) / area)
    electrons = optics.dose_per_a2 * pixel_size**2 * float(np.mean(transmission))
    # White noise of std 1 a pixel, blurred by a Gaussian of sigma b pixels, keeps a std of
    # 1 / (2·sqrt(pi)·b); through any filter, sqrt(mean |transfer|²) over the full grid.
    shot = 1 / (math.sqrt(electrons) * 2 * math.sqrt(math.pi) * blur)
    power = transfer.astype(np.float64) ** 2
    # the rfft grid holds each column but the first twice; the Nyquist column, held once, is
    # doubled too: an error of about 1 / cols, too small to matter
    power[:, 1:] *= 2
    ice = float(np.sqrt(np.mean(texture.astype(np.float64) ** 2) * power.sum() / (rows * cols)))
    return rms, shot, ice


def _draw_optics(
    rng: np.random.Generator,
    defocus_range: tuple[float, float] = DEFOCUS_RANGE_UM,
    dose_range: tuple[float, float] = DOSE_PER_A2,
) -> _Optics:
    return _Optics(
        defocus_um=float(rng.uniform(*defocus_range)),
        astigmatism_um=float(rng.uniform(0.0, ASTIGMATISM_MAX_UM)),
        astigmatism_angle=float(rng.uniform(0.0, math.pi)),
        b_factor=float(rng.uniform(*B_FACTOR_RANGE)),
        dose_per_a2=float(rng.uniform(*dose_range)),
    )


def _wavelength(voltage_kv: float = VOLTAGE_KV) -> float:
    """Relativistic electron wavelength in Å."""
    volts = voltage_kv * 1e3
    return 12.2643 / math.sqrt(volts * (1 + 0.978466e-6 * volts))


def _ctf(shape: tuple[int, int], pixel_size: float, optics: _Optics) -> np.ndarray:
    """2·CTF·envelope on the ``rfft2`` grid of ``shape`` (float32).

    CTF = -(sqrt(1 - A²)·sin χ + A·cos χ), χ = π·λ·Δf(θ)·k² - π/2·Cs·λ³·k⁴, with Δf > 0 for
    underfocus, so protein (positive phase) comes out dark, as in real micrographs.
    """
    wavelength = _wavelength()
    ky = scipy.fft.fftfreq(shape[0], d=pixel_size).astype(np.float32)[:, None]
    kx = scipy.fft.rfftfreq(shape[1], d=pixel_size).astype(np.float32)[None, :]
    ky2, kx2 = ky * ky, kx * kx
    k2 = ky2 + kx2
    defocus = optics.defocus_um * 1e4
    half_astig = optics.astigmatism_um * 1e4 / 2
    angle = 2 * optics.astigmatism_angle
    # Δf(θ)·k² without θ: cos 2θ·k² = kx² - ky², sin 2θ·k² = 2·kx·ky.
    defocus_k2 = np.float32(defocus) * k2 + np.float32(half_astig) * (
        np.float32(math.cos(angle)) * (kx2 - ky2) + np.float32(math.sin(angle)) * 2 * kx * ky
    )
    chi = np.float32(math.pi * wavelength) * defocus_k2
    chi -= np.float32(math.pi / 2 * CS_MM * 1e7 * wavelength**3) * (k2 * k2)
    amplitude = AMPLITUDE_CONTRAST
    ctf = np.float32(-math.sqrt(1 - amplitude**2)) * np.sin(chi)
    ctf -= np.float32(amplitude) * np.cos(chi)
    ctf *= np.exp(k2 * np.float32(-optics.b_factor / 4))
    ctf *= np.float32(2)
    return ctf


def protein_of(protein_seed: int, diameter: float, family: str = "blobs") -> _Protein:
    """The protein of ``family`` and ``protein_seed`` at ``diameter``: the one
    :func:`make_micrograph` simulates for that seed."""
    return _make_protein(np.random.default_rng([protein_seed, _PROTEIN_TAG]), diameter, family)


def _make_protein(rng: np.random.Generator, diameter: float, family: str = "blobs") -> _Protein:
    """A protein of ``family`` spanning ``diameter`` (its largest extent).

    "blobs": Gaussian blobs in one to three ellipsoidal domains. The other families are laid
    out by their builders (_shell, _ring, ...) in the protein's own frame, so that a test can
    choose a view: rings and rods lie along x, plates and rings in the x-y plane.
    """
    if family != "blobs":
        return _finish_protein(*_FAMILY_BUILDERS[family](rng, diameter / 2), diameter / 2)
    radius = diameter / 2
    n = int(rng.integers(30, 81))
    n_domains = int(rng.integers(1, 4))
    share = rng.dirichlet(np.full(n_domains, 6.0))  # no domain of one or two blobs
    domain = rng.choice(n_domains, size=n, p=share)
    centres = np.empty((n, 3))
    for d in range(n_domains):
        members = np.flatnonzero(domain == d)
        axes = radius * rng.uniform(0.45, 1.0, 3) * (1.0 if n_domains == 1 else 0.7)
        offset = (
            np.zeros(3) if d == 0 else _unit_vectors(rng, 1)[0] * radius * rng.uniform(0.4, 0.7)
        )
        turn = _rotations(rng, 1)[0]
        direction = _unit_vectors(rng, len(members))
        depth = rng.random(len(members)) ** (1 / 3)  # uniform in the ball
        centres[members] = np.einsum("nj,ij->ni", direction * depth[:, None] * axes, turn) + offset
    spacing = (math.pi / 6 * diameter**3 / n) ** (1 / 3)
    sigmas = spacing * rng.uniform(0.3, 0.45, n)
    masses = sigmas**3 * rng.uniform(0.5, 1.5, n)
    centres -= (masses[:, None] * centres).sum(axis=0) / masses.sum()
    # Scale the layout (not the blobs) so that the outer edge of most blobs (2σ beyond the
    # centre) reaches the radius, then pull the few beyond it back in: the particle fills its
    # diameter without a stray blob deciding the scale.
    reach = np.linalg.norm(centres, axis=1) + 2 * sigmas
    centres *= (radius - 2 * np.median(sigmas)) / max(
        float(np.quantile(reach - 2 * sigmas, 0.9)), 1e-6
    )
    for _ in range(3):
        distance = np.maximum(np.linalg.norm(centres, axis=1), 1e-6)
        limit = np.maximum(radius - 2 * sigmas, 0.0)
        centres *= np.minimum(1.0, limit / distance)[:, None]
        # The pick is the centre of mass.
        centres -= (masses[:, None] * centres).sum(axis=0) / masses.sum()
    masses *= PROTEIN_FILL * math.pi / 6 * diameter**3 / masses.sum()
    return _Protein(centres, sigmas, masses)


# Each builder returns (centres, sigmas, relative masses, envelope volume, fill) for a particle
# of about ``radius``; _finish_protein then centres and scales it exactly. Blobs sit about two
# σ apart (closer leaves no texture, further leaves holes), under MAX_FAMILY_BLOBS.
_Layout = tuple[np.ndarray, np.ndarray, np.ndarray, float, float]


def _finish_protein(
    centres: np.ndarray,
    sigmas: np.ndarray,
    weights: np.ndarray,
    volume: float,
    fill: float,
    radius: float,
) -> _Protein:
    """Centre on the centre of mass (the pick), scale the whole layout (blobs too) so that
    the outermost blob edge (2σ) reaches ``radius``, and give it ``fill`` × its envelope's
    ``volume`` of protein."""
    masses = weights * sigmas**3
    centres = centres - (masses[:, None] * centres).sum(axis=0) / masses.sum()
    scale = radius / float(np.max(np.linalg.norm(centres, axis=1) + 2 * sigmas))
    centres, sigmas = centres * scale, sigmas * scale
    masses = masses * (fill * volume * scale**3 / masses.sum())
    return _Protein(centres, sigmas, masses)


def _shell(rng: np.random.Generator, radius: float) -> _Layout:
    """A hollow spherical cage (apoferritin, capsids): one layer of blobs on a sphere, so a
    projection is a ring, darker at the rim (the wall seen edge-on) than at the centre."""
    wall = 2 * radius * rng.uniform(0.08, 0.2)
    sigma = wall / 3.2
    middle = radius - wall / 2
    area = 4 * math.pi * middle**2
    n = int(np.clip(round(area / (2.2 * sigma) ** 2), 24, MAX_FAMILY_BLOBS))
    # Where the blob count is capped, wider blobs close the holes (a thicker-looking wall).
    sigma = max(sigma, math.sqrt(area / n) / 2.2)
    # A Fibonacci lattice spreads n points evenly; jitter makes capsomer-like lumps.
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = math.pi * (1 + math.sqrt(5)) * k
    directions = np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], -1
    )
    directions += rng.normal(0.0, 0.25 * 2.2 * sigma / middle, directions.shape)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    centres = directions * (middle + rng.normal(0.0, 0.05 * wall, n))[:, None]
    volume = 4 / 3 * math.pi * (radius**3 - (radius - wall) ** 3)
    return centres, sigma * rng.uniform(0.85, 1.15, n), rng.uniform(0.7, 1.3, n), volume, WALL_FILL


def _ring(rng: np.random.Generator, radius: float) -> _Layout:
    """A ring or barrel around z (nanodiscs, GroEL, pores): stacked layers of blobs on a
    circle, their mass modulated with an n-fold symmetry (the subunits)."""
    wall = 2 * radius * rng.uniform(0.14, 0.3)
    height = 2 * radius * rng.uniform(0.15, 1.0)
    sigma = wall / 2.6
    middle = radius - wall / 2
    per_layer = int(np.clip(round(2 * math.pi * middle / (2 * sigma)), 8, 60))
    layers = int(np.clip(round((height - 2 * sigma) / (2 * sigma)) + 1, 1, 240 // per_layer))
    heights = np.linspace(-1.0, 1.0, layers) * max(height / 2 - sigma, 0.0)
    theta = 2 * math.pi * np.arange(per_layer) / per_layer
    # Alternate layers turn by half a step: a closer packing than stacked columns.
    theta = theta[None, :] + (np.arange(layers) % 2)[:, None] * (math.pi / per_layer)
    theta = theta.ravel() + rng.normal(0.0, 0.15 * 2 * sigma / middle, theta.size)
    reach = middle + rng.normal(0.0, 0.1 * wall, theta.size)
    z = np.repeat(heights, per_layer) + rng.normal(0.0, 0.2 * sigma, theta.size)
    centres = np.stack([reach * np.cos(theta), reach * np.sin(theta), z], -1)
    subunits = int(rng.integers(5, 15))
    weights = 1 + rng.uniform(0.2, 0.6) * np.cos(subunits * theta + rng.uniform(0, 2 * math.pi))
    weights *= rng.uniform(0.8, 1.2, theta.size)
    volume = math.pi * (radius**2 - (radius - wall) ** 2) * height
    return centres, sigma * rng.uniform(0.85, 1.15, theta.size), weights, volume, WALL_FILL


def _rod(rng: np.random.Generator, radius: float) -> _Layout:
    """A straight rod along x, 2.5–4 times as long as wide (filament pieces, coiled coils):
    blobs fill a cylinder, slice by slice, so the rod has an even width and density."""
    length = 2 * radius
    width = length / rng.uniform(2.5, 4.0)
    sigma = width / rng.uniform(4.5, 6.5)
    core = max(width / 2 - 1.5 * sigma, 0.0)  # blob centres within this of the axis
    slices = round((length - 4 * sigma) / (1.3 * sigma)) + 1
    per_slice = max(1, min(round((core / sigma) ** 2 * 1.5) + 1, MAX_FAMILY_BLOBS // slices))
    x = np.repeat(np.linspace(-1.0, 1.0, slices) * (length / 2 - 2 * sigma), per_slice)
    x = x + rng.normal(0.0, 0.3 * sigma, x.size)
    angle = rng.uniform(0.0, 2 * math.pi, x.size)
    distance = core * np.sqrt(rng.random(x.size))  # uniform in the disc
    centres = np.stack([x, distance * np.cos(angle), distance * np.sin(angle)], -1)
    volume = math.pi * (width / 2) ** 2 * length
    sigmas = sigma * rng.uniform(0.85, 1.15, x.size)
    return centres, sigmas, rng.uniform(0.7, 1.3, x.size), volume, WALL_FILL


def _flat(rng: np.random.Generator, radius: float) -> _Layout:
    """A plate in the x-y plane (2-D arrays, discs, flat complexes): an elliptic outline,
    8–20 % of the diameter thick, one layer of blobs on a jittered hexagonal lattice."""
    thickness = 2 * radius * rng.uniform(0.08, 0.2)
    sigma = thickness / 3.2
    minor = radius * rng.uniform(0.65, 1.0)
    spacing = 2.2 * sigma
    area = math.pi * radius * minor
    # Widen the lattice where a thin, wide plate would need too many blobs.
    spacing = max(spacing, math.sqrt(area / (0.866 * MAX_FAMILY_BLOBS)))
    rows = np.arange(-radius, radius + spacing, spacing * 0.866)
    grid = [
        (x + (i % 2) * spacing / 2, y)
        for i, y in enumerate(rows)
        for x in np.arange(-radius, radius + spacing, spacing)
    ]
    xy = np.array(grid) + rng.normal(0.0, 0.15 * spacing, (len(grid), 2))
    a, b = radius - 1.5 * sigma, minor - 1.5 * sigma
    xy = xy[(xy[:, 0] / a) ** 2 + (xy[:, 1] / b) ** 2 <= 1]
    if len(xy) == 0:
        xy = np.zeros((1, 2))
    z = rng.normal(0.0, 0.05 * thickness, len(xy))
    centres = np.column_stack([xy, z])
    n = len(centres)
    volume = area * thickness
    # The plate's own outline sets σ at most: a widened lattice gets wider blobs.
    sigmas = max(sigma, spacing / 2.2) * rng.uniform(0.85, 1.15, n)
    return centres, sigmas, rng.uniform(0.7, 1.3, n), volume, WALL_FILL


def _ribosome(rng: np.random.Generator, radius: float) -> _Layout:
    """Two unequal, dense lobes (a ribosome's large and small subunits, about 2:1 in mass):
    ellipsoids of blobs, the small one flatter, sitting on the large one along z."""
    large = radius * np.array([1.0, rng.uniform(0.85, 0.95), rng.uniform(0.75, 0.85)])
    small = large[0] * np.array(
        [rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.7), rng.uniform(0.4, 0.5)]
    )
    gap = large[2] + small[2] * rng.uniform(0.2, 0.5)  # the lobes overlap a little
    offset = np.array([rng.uniform(-0.15, 0.15) * large[0], 0.0, gap])
    n_large = int(rng.integers(60, 90))
    n_small = int(rng.integers(30, 45))
    centres, sigmas = [], []
    for axes, n, centre in ((large, n_large, np.zeros(3)), (small, n_small, offset)):
        direction = _unit_vectors(rng, n)
        depth = rng.random(n) ** (1 / 3)  # uniform in the ball
        spacing = (4 / 3 * math.pi * float(np.prod(axes)) / n) ** (1 / 3)
        sigma = spacing * rng.uniform(0.35, 0.45, n)
        inner = np.maximum(axes[None, :] - 1.5 * sigma[:, None], 0.1 * axes[None, :])
        local = direction * depth[:, None] * inner
        # A mild tilt of the small lobe about x, so the two never line up exactly.
        tilt = float(rng.uniform(-0.35, 0.35)) if centre.any() else 0.0
        turn = np.array(
            [[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]]
        )
        centres.append(local @ turn.T + centre)
        sigmas.append(sigma)
    volume = 4 / 3 * math.pi * (float(np.prod(large)) + float(np.prod(small)))
    weights = rng.uniform(0.7, 1.3, n_large + n_small)
    return np.concatenate(centres), np.concatenate(sigmas), weights, volume, RIBOSOME_FILL


_FAMILY_BUILDERS = {
    "shell": _shell,
    "ring": _ring,
    "rod": _rod,
    "flat": _flat,
    "ribosome": _ribosome,
}


def _fragment(rng: np.random.Generator, protein: _Protein) -> _Protein:
    """A broken particle: the 30–60 % of the blobs on one side of a random plane (a cap of a
    shell, an arc of a ring, a piece of a rod), centred on its own centre of mass."""
    share = float(rng.uniform(0.3, 0.6))
    along = protein.centres @ _unit_vectors(rng, 1)[0]
    keep = along <= np.quantile(along, share)
    centres, sigmas, masses = protein.centres[keep], protein.sigmas[keep], protein.masses[keep]
    centres = centres - (masses[:, None] * centres).sum(axis=0) / masses.sum()
    return _Protein(centres, sigmas, masses)


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly random rotation matrices (normalised Gaussian quaternions), (n, 3, 3)."""
    q = rng.standard_normal((n, 4))
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def _render_particles(
    canvas: np.ndarray,
    protein: _Protein,
    xy: np.ndarray,
    rotations: np.ndarray,
    pixel_size: float,
    scale: float,
    chunk: int = 64,
) -> None:
    """Add ``scale`` × the projected thickness of each particle to ``canvas``, in place.

    A rotated 3-D Gaussian projects to a 2-D Gaussian of the same σ at the rotated centre's
    (x, y), so a particle patch is Σ_b w_b·gy_b(row)·gx_b(col) = Gyᵀ·diag(w)·Gx: one batched
    matrix product. The x axis of the rotated frame is the image column, y the row.
    """
    # Half a pixel of extra blur stands for the pixel's area and keeps small blobs from aliasing.
    sigmas_px = np.sqrt(protein.sigmas**2 + (0.5 * pixel_size) ** 2) / pixel_size
    weights = (scale * protein.masses / (2 * math.pi * (sigmas_px * pixel_size) ** 2)).astype(
        np.float32
    )
    reach = np.max(np.linalg.norm(protein.centres, axis=1) / pixel_size + 4 * sigmas_px)
    half = math.ceil(reach) + 1
    size = 2 * half + 1
    chunk = max(1, min(chunk, 8_000_000 // size**2))  # patches of a chunk stay under ~64 MB
    offsets = np.arange(-half, half + 1, dtype=np.float32)
    inv_two_var = (1 / (2 * sigmas_px**2)).astype(np.float32)
    rows, cols = canvas.shape
    corner = np.floor(xy).astype(np.intp)  # the pixel holding each centre
    fraction = xy - corner
    for start in range(0, len(xy), chunk):
        stop = min(start + chunk, len(xy))
        projected = np.einsum("pij,bj->pbi", rotations[start:stop, :2, :], protein.centres)
        projected = projected / pixel_size + fraction[start:stop, None, :]
        projected = projected.astype(np.float32)
        # gx: (particle, blob, col); gy: (particle, row, blob), weights folded in.
        gx = np.exp(-((offsets - projected[..., 0:1]) ** 2) * inv_two_var[None, :, None])
        gy = np.exp(-((offsets[:, None] - projected[:, None, :, 1]) ** 2) * inv_two_var)
        gy *= weights
        # einsum, not matmul: a multi-threaded BLAS sums in an order that depends on the
        # thread count (so would the bytes), and is slow for these small batched products.
        patches = np.einsum("prb,pbc->prc", gy, gx)
        for k, (cx, cy) in enumerate(corner[start:stop]):
            r0, c0 = cy - half, cx - half
            r_lo, r_hi = max(r0, 0), min(r0 + size, rows)
            c_lo, c_hi = max(c0, 0), min(c0 + size, cols)
            canvas[r_lo:r_hi, c_lo:c_hi] += patches[k, r_lo - r0 : r_hi - r0, c_lo - c0 : c_hi - c0]


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], length_px: float) -> np.ndarray:
    """A smooth random field, mean ≈ 0 and std ≈ 1, varying over ``length_px`` (float32).

    Random values on a coarse lattice, interpolated with Gaussian kernels: Gy·L·Gxᵀ, two small
    matrix products instead of filtering a full-size noise image.
    """
    factors = []
    for n in shape:
        knots = np.arange(-2 * length_px, n + 2 * length_px, length_px, dtype=np.float32)
        position = np.arange(n, dtype=np.float32)
        factors.append(np.exp(-(((position[:, None] - knots[None, :]) / length_px) ** 2)))
    lattice = rng.standard_normal((factors[0].shape[1], factors[1].shape[1])).astype(np.float32)
    # einsum rather than BLAS: same bytes whatever the thread count (see _render_particles).
    field = np.einsum("rk,kc->rc", factors[0], np.einsum("kl,cl->kc", lattice, factors[1]))
    field -= field.mean(dtype=np.float64)
    field /= max(float(field[::8, ::8].std(dtype=np.float64)), 1e-12)
    return field


def _ice_thickness(
    rng: np.random.Generator,
    shape: tuple[int, int],
    diameter: float,
    ice_range: tuple[float, float] = ICE_THICKNESS,
) -> np.ndarray:
    """Ice thickness in Å: a random mean, a linear gradient and slow undulations."""
    rows, cols = shape
    mean = max(float(rng.uniform(*ice_range)), 1.3 * diameter)
    gradient = float(rng.uniform(0.0, 0.3))  # relative change across the micrograph
    angle = float(rng.uniform(0.0, 2 * math.pi))
    undulation = float(rng.uniform(0.03, 0.1))
    extent = max(rows, cols)
    ys = (np.arange(rows, dtype=np.float32) - rows / 2) * np.float32(math.sin(angle) / extent)
    xs = (np.arange(cols, dtype=np.float32) - cols / 2) * np.float32(math.cos(angle) / extent)
    field = _smooth_field(rng, shape, extent / 3)
    field *= np.float32(undulation)
    field += ys[:, None] * np.float32(gradient)
    field += xs[None, :] * np.float32(gradient)
    field += np.float32(1)
    field *= np.float32(mean)
    return np.maximum(field, np.float32(0.5 * mean), out=field)


def _add_carbon(
    rng: np.random.Generator, junk: np.ndarray, transmission: np.ndarray, texture: np.ndarray
) -> None:
    """Carbon beyond the rim of the hole: a large circle with a slow wobble, covering 5–35 %."""
    rows, cols = junk.shape
    share = float(rng.uniform(0.05, 0.35))
    angle = float(rng.uniform(0.0, 2 * math.pi))
    direction = np.array([math.sin(angle), math.cos(angle)])  # (row, col), towards the carbon
    hole_radius = float(rng.uniform(1.0, 3.0)) * max(rows, cols)
    # Where a straight edge would leave ``share`` of the image beyond it, by the projections
    # of a coarse sample of pixel positions onto the direction.
    grid = np.stack(
        np.meshgrid(np.linspace(0, rows - 1, 64), np.linspace(0, cols - 1, 64), indexing="ij"), -1
    ).reshape(-1, 2) - np.array([rows / 2, cols / 2])
    edge = float(np.quantile(grid[:, 0] * direction[0] + grid[:, 1] * direction[1], 1 - share))
    centre = np.array([rows / 2, cols / 2]) + (edge - hole_radius) * direction
    wobble = _smooth_field(rng, junk.shape, max(rows, cols) / 4)
    wobble *= np.float32(rng.uniform(0.005, 0.02) * max(rows, cols))
    dy = np.arange(rows, dtype=np.float32) - np.float32(centre[0])
    dx = np.arange(cols, dtype=np.float32) - np.float32(centre[1])
    beyond = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    beyond -= np.float32(hole_radius)
    beyond += wobble  # signed distance (px) past the rim
    del wobble
    junk |= beyond > 0
    # A soft rim, a few pixels wide.
    weight = np.clip(beyond * np.float32(1 / 4) + np.float32(0.5), 0, 1, out=beyond)
    absorbed = np.float32(rng.uniform(0.1, 0.25))  # carbon passes 75–90 % of the electrons
    transmission *= 1 - absorbed * weight
    texture *= 1 + np.float32(rng.uniform(1.0, 2.0)) * weight  # amorphous carbon is grainier


def _add_contamination(
    rng: np.random.Generator,
    junk: np.ndarray,
    transmission: np.ndarray,
    phase: np.ndarray,
    diameter_px: float,
) -> None:
    """One ice-contamination blob: thick, dark, irregular, a lens profile with a soft rim."""
    rows, cols = junk.shape
    # at least 1.5 diameters in radius: a dark blob of a particle's size is a particle, and
    # a model shown such blobs as junk calls real large particles (ribosomes) junk
    radius = min(float(rng.uniform(1.5, 4.0)) * diameter_px, 0.2 * min(rows, cols))
    radius = max(radius, 4.0)
    cy, cx = float(rng.uniform(0, rows)), float(rng.uniform(0, cols))
    orders = np.arange(2, 7)
    amplitudes = rng.uniform(0.0, 0.3, orders.size) / orders
    phases = rng.uniform(0.0, 2 * math.pi, orders.size)
    absorption = float(rng.uniform(1.0, 2.5))  # the centre passes exp(-1..-2.5) = 8–37 %
    lens_phase = float(rng.uniform(0.2, 0.6))
    reach = math.ceil(radius * (1 + amplitudes.sum()) + 3)
    r_lo, r_hi = max(int(cy) - reach, 0), min(int(cy) + reach + 1, rows)
    c_lo, c_hi = max(int(cx) - reach, 0), min(int(cx) + reach + 1, cols)
    if r_lo >= r_hi or c_lo >= c_hi:
        return
    dy = (np.arange(r_lo, r_hi, dtype=np.float32) - np.float32(cy))[:, None]
    dx = (np.arange(c_lo, c_hi, dtype=np.float32) - np.float32(cx))[None, :]
    distance = np.sqrt(dy * dy + dx * dx)
    theta = np.arctan2(dy, dx)
    rim = np.full(distance.shape, np.float32(radius))
    for order, amplitude, offset in zip(orders, amplitudes, phases, strict=True):
        rim *= 1 + np.float32(amplitude) * np.cos(theta * np.float32(order) + np.float32(offset))
    relative = distance / rim
    inside = relative < 1
    junk[r_lo:r_hi, c_lo:c_hi] |= inside
    # A lens: thickness ∝ sqrt(1 - r²), with a soft shoulder of two pixels at the rim.
    softness = np.float32(2) / rim
    height = np.sqrt(np.clip(1 - relative * relative, 0, 1))
    height = np.maximum(height, np.clip((1 - relative) / softness + 0.5, 0, 1) * 0.3 * softness)
    transmission[r_lo:r_hi, c_lo:c_hi] *= np.exp(height * np.float32(-absorption))
    # The CTF is applied to a periodic image: a phase step where a blob meets the border would
    # ring across to the opposite side, so the blob's phase fades out near the borders.
    lens = height * np.float32(lens_phase)
    lens *= _border_taper(r_lo, r_hi, rows)[:, None]
    lens *= _border_taper(c_lo, c_hi, cols)[None, :]
    phase[r_lo:r_hi, c_lo:c_hi] += lens


def _add_aggregates(
    rng: np.random.Generator,
    junk: np.ndarray,
    phase: np.ndarray,
    protein: _Protein,
    pixel_size: float,
    diameter: float,
) -> None:
    """Aggregates: clumps of 3–8 overlapping copies of the protein, added to the junk mask.

    At least one per micrograph, one more per AGGREGATE_AREA diameters² (Poisson). Each copy
    sits 0.45–0.85 diameters from another, so the clump is one dense, lumpy body, and the mask
    is the union of the copies' discs.
    """
    rows, cols = junk.shape
    diameter_px = diameter / pixel_size
    radius_px = diameter_px / 2
    count = 1 + int(rng.poisson(rows * cols / diameter_px**2 / AGGREGATE_AREA))
    copies = []
    for _ in range(count):
        members = [np.zeros(2)]
        for _ in range(int(rng.integers(3, 9)) - 1):
            angle = float(rng.uniform(0.0, 2 * math.pi))
            step = float(rng.uniform(0.45, 0.85)) * diameter_px
            base = members[int(rng.integers(len(members)))]
            members.append(base + step * np.array([math.cos(angle), math.sin(angle)]))
        clump = np.array(members) - np.mean(members, axis=0)
        margin_x, margin_y = min(diameter_px, cols / 2), min(diameter_px, rows / 2)
        centre = rng.uniform([margin_x, margin_y], [cols - margin_x, rows - margin_y])
        copies.append(clump + centre)
    # Whole copies inside the image: the CTF is applied to a periodic image, and a particle
    # cut by the border would ring across to the opposite side.
    xy = np.concatenate(copies)
    xy[:, 0] = np.clip(xy[:, 0], radius_px, cols - 1 - radius_px)
    xy[:, 1] = np.clip(xy[:, 1], radius_px, rows - 1 - radius_px)
    _render_particles(phase, protein, xy, _rotations(rng, len(xy)), pixel_size, PHASE_PER_A)
    reach = math.ceil(radius_px)
    for x, y in xy:
        r_lo, r_hi = max(int(y) - reach, 0), min(int(y) + reach + 2, rows)
        c_lo, c_hi = max(int(x) - reach, 0), min(int(x) + reach + 2, cols)
        dy = np.arange(r_lo, r_hi)[:, None] - y
        dx = np.arange(c_lo, c_hi)[None, :] - x
        junk[r_lo:r_hi, c_lo:c_hi] |= dy * dy + dx * dx <= radius_px * radius_px


def _add_broken(
    rng: np.random.Generator,
    junk: np.ndarray,
    phase: np.ndarray,
    protein: _Protein,
    particles: np.ndarray,
    pixel_size: float,
    diameter: float,
) -> np.ndarray:
    """Broken particles: fragments of the protein (see _fragment), 5–25 % as many as the
    particles (at least one), at least MIN_DISTANCE diameters from every particle and off
    junk. They are background to the picker: neither picks nor junk. Returns their (x, y).
    """
    rows, cols = junk.shape
    diameter_px = diameter / pixel_size
    radius_px = diameter_px / 2
    if rows - 1 - 2 * radius_px < 0 or cols - 1 - 2 * radius_px < 0:
        return np.zeros((0, 2))
    count = max(1, round(len(particles) * float(rng.uniform(0.05, 0.25))))
    candidates = rng.uniform(
        [radius_px, radius_px], [cols - 1 - radius_px, rows - 1 - radius_px], (30 * count + 50, 2)
    )
    on_junk = junk[
        np.round(candidates[:, 1]).astype(np.intp), np.round(candidates[:, 0]).astype(np.intp)
    ]
    candidates = candidates[~on_junk]
    min_distance = MIN_DISTANCE * diameter_px
    if len(particles) and len(candidates):
        distance, _ = spatial.cKDTree(particles).query(candidates)
        candidates = candidates[distance >= min_distance]
    kept: list[tuple[float, float]] = []
    for x, y in candidates.tolist():
        if len(kept) >= count:
            break
        if all(math.hypot(x - ox, y - oy) >= min_distance for ox, oy in kept):
            kept.append((x, y))
    xy = np.array(kept, dtype=np.float64).reshape(-1, 2)
    kinds = min(len(xy), 4)  # a few kinds of break, each at several places
    for kind in range(kinds):
        at = xy[kind::kinds]
        fragment = _fragment(rng, protein)
        _render_particles(phase, fragment, at, _rotations(rng, len(at)), pixel_size, PHASE_PER_A)
    return xy


def _border_taper(lo: int, hi: int, n: int) -> np.ndarray:
    """Weights for positions lo..hi-1 of n: a raised cosine from 0 at a border to 1 inside."""
    width = max(8.0, 0.05 * n)
    position = np.arange(lo, hi, dtype=np.float32)
    edge = np.minimum(position + 0.5, n - 0.5 - position) / np.float32(width)
    return (0.5 - 0.5 * np.cos(np.pi * np.clip(edge, 0, 1))).astype(np.float32)


def _place_particles(
    rng: np.random.Generator, junk: np.ndarray, radius_px: float, coverage: float | None = None
) -> np.ndarray:
    """Random sequential placement: (n, 2) centres (x, y), one radius clear of junk and borders.

    No two centres closer than ``MIN_DISTANCE`` diameters; the number aimed for is a random
    coverage of the free area (sparse to crowded), or ``coverage`` where given. Candidates
    come in one batch and are checked against a hash grid of cells one minimum distance wide.
    """
    rows, cols = junk.shape
    min_distance = MIN_DISTANCE * 2 * radius_px
    cell = max(1, int(radius_px / 3))
    free = _clear_of_junk(junk, radius_px, cell)
    span_rows, span_cols = rows - 1 - 2 * radius_px, cols - 1 - 2 * radius_px
    if span_rows < 0 or span_cols < 0:
        return np.zeros((0, 2))
    drawn = float(rng.uniform(*COVERAGE_RANGE))  # drawn either way: the stream stays aligned
    coverage = drawn if coverage is None else coverage
    free_area = float(free.mean()) * max(span_rows, 1) * max(span_cols, 1)
    # At least one particle wherever one fits: a micrograph of a large particle is never empty.
    target = max(1, round(coverage * free_area / (math.pi * radius_px**2)))
    candidates = 60 * target + 100
    ys = rng.uniform(radius_px, rows - 1 - radius_px, candidates)
    xs = rng.uniform(radius_px, cols - 1 - radius_px, candidates)
    usable = free[(ys // cell).astype(np.intp), (xs // cell).astype(np.intp)]
    ys, xs = ys[usable], xs[usable]
    limit = min_distance * min_distance
    grid: dict[tuple[int, int], list[tuple[float, float]]] = {}
    kept: list[tuple[float, float]] = []
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if len(kept) >= target:
            break
        gx, gy = int(x // min_distance), int(y // min_distance)
        if any(
            (x - ox) ** 2 + (y - oy) ** 2 < limit
            for i in (gx - 1, gx, gx + 1)
            for j in (gy - 1, gy, gy + 1)
            for ox, oy in grid.get((i, j), ())
        ):
            continue
        grid.setdefault((gx, gy), []).append((x, y))
        kept.append((x, y))
    return np.array(kept, dtype=np.float64).reshape(-1, 2)


def _clear_of_junk(junk: np.ndarray, radius_px: float, cell: int) -> np.ndarray:
    """Cells of ``cell``² pixels whose every pixel is at least ``radius_px`` from junk."""
    rows, cols = junk.shape
    coarse = np.logical_or.reduceat(
        np.logical_or.reduceat(junk, np.arange(0, rows, cell), axis=0),
        np.arange(0, cols, cell),
        axis=1,
    )
    if not coarse.any():
        return np.ones(coarse.shape, bool)
    # Cell centres are exact to within a cell's diagonal; subtract it to stay on the safe side.
    distance = ndimage.distance_transform_edt(~coarse) * cell
    return distance - 1.5 * cell >= radius_px

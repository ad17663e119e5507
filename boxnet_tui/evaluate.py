"""Score picks against reference picks: precision, recall, F1 and a threshold sweep.

Conventions, stated once:

- **Matching.** A pick and a reference match when their centres lie within ``radius`` px
  (Euclidean, inclusive: a distance of exactly ``radius`` matches). Matching is one-to-one and
  optimal: the largest possible number of matches, and among those the smallest total distance
  (:func:`match_picks`). Two picks on one particle count once; the other is a false positive.
- **Edge cases.** precision = TP / picks, recall = TP / references, F1 = their harmonic mean.
  Each ratio with a zero denominator is 0 (no picks: precision 0; no references: recall 0),
  and F1 is 0 when precision + recall is 0. So an empty micrograph with no picks scores 0/0/0;
  totals are pooled counts over micrographs (micro-average), not a mean of per-micrograph F1.
- **Threshold sweep.** When picks carry scores (``rlnAutopickFigureOfMerit``), every distinct
  score t is a threshold and keeps the picks with score >= t (as :meth:`Picks.above`; picks
  without a score are kept at every threshold). At each threshold TP is the *exact* maximum
  one-to-one matching of the kept picks, pooled over all micrographs, not a greedy match: it
  is computed incrementally (Kuhn's augmenting paths, adding picks in descending score order),
  which is exact because a maximum matching of a prefix stays maximum while picks are added.
  The last point (the lowest threshold) therefore equals :func:`score_picks` on all picks.
  Average precision is the non-interpolated step sum ``AP = sum_k (R_k - R_{k-1}) * P_k`` over
  the thresholds in descending order with ``R_0 = 0`` (scikit-learn's
  ``average_precision_score`` definition); it is at most the final recall. The best F1 is the
  largest F1 over thresholds; on ties the highest threshold wins.
- **Border.** With ``border`` > 0 px, picks and references whose centre is not on the pixels
  ``border .. size-1-border`` (pixel centres at integer coordinates, so a point is kept when
  ``border - 0.5 <= x <= cols - border - 0.5``, same for y and rows) are dropped before
  matching, on both sides.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from boxnet_tui.errors import MicrographError, StarError, UserError
from boxnet_tui.io.layout import FALSE_POSITIVES, common_tail, longest_root
from boxnet_tui.io.micrographs import natural_key, read_info, scan_folder
from boxnet_tui.io.star import Picks, read_micrograph_names, read_picks

CURVE_POINTS = 101  # at most this many points of the sweep go into report_json


# --------------------------------------------------------------------------- matching


def _as_xy(points: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{what} must be an (N, 2) array of (x, y), not shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return array


def _check_radius(radius: float) -> float:
    radius = float(radius)
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"the match radius must be a finite number >= 0, not {radius}")
    return radius


def _neighbours(
    a: np.ndarray, b: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j, distance) with ``|a_i - b_j| <= radius``."""
    if len(a) == 0 or len(b) == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0)
    pairs = cKDTree(a).sparse_distance_matrix(cKDTree(b), radius, output_type="ndarray")
    return pairs["i"].astype(np.intp), pairs["j"].astype(np.intp), pairs["v"].astype(np.float64)


def match_picks(picks_xy: np.ndarray, reference_xy: np.ndarray, radius: float) -> np.ndarray:
    """Optimal one-to-one matching of picks to references within ``radius`` px.

    Maximises the number of matched pairs and, among maximum matchings, minimises the total
    distance. The within-radius pairs come from a k-d tree; the bipartite graph they form is
    split into connected components, isolated pairs are matched directly and every larger
    component is solved with the Hungarian algorithm (``linear_sum_assignment``) on its own
    small cost matrix, so thousands of picks take milliseconds.

    Args:
        picks_xy: (N, 2) array of (x, y).
        reference_xy: (M, 2) array of (x, y).
        radius: largest matching distance in px (inclusive).

    Returns:
        (K, 2) integer array of (pick index, reference index), sorted by pick index.
    """
    a = _as_xy(picks_xy, "picks_xy")
    b = _as_xy(reference_xy, "reference_xy")
    radius = _check_radius(radius)
    i, j, d = _neighbours(a, b, radius)
    if i.size == 0:
        return np.empty((0, 2), dtype=np.intp)
    n = len(a)
    graph = coo_matrix((np.ones(i.size), (i, n + j)), shape=(n + len(b), n + len(b)))
    _, node_label = connected_components(graph, directed=False)
    label = node_label[i]
    order = np.argsort(label, kind="stable")
    i, j, d, label = i[order], j[order], d[order], label[order]
    starts = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    ends = np.r_[starts[1:], label.size]
    single = ends - starts == 1
    found = [np.stack([i[starts[single]], j[starts[single]]], axis=1)]
    for start, end in zip(starts[~single], ends[~single], strict=True):
        rows, row_of = np.unique(i[start:end], return_inverse=True)
        cols, col_of = np.unique(j[start:end], return_inverse=True)
        # A forbidden pair costs more than any k allowed distances together, so the optimum
        # first maximises the number of allowed pairs, then minimises their total distance.
        forbidden = (min(rows.size, cols.size) + 1) * (radius + 1.0)
        cost = np.full((rows.size, cols.size), forbidden)
        cost[row_of, col_of] = d[start:end]
        r, c = linear_sum_assignment(cost)
        allowed = cost[r, c] < forbidden
        found.append(np.stack([rows[r[allowed]], cols[c[allowed]]], axis=1))
    matched = np.concatenate(found).astype(np.intp)
    return matched[np.argsort(matched[:, 0], kind="stable")]


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class Score:
    """Counts of one comparison and the ratios derived from them (see the module docstring
    for the zero-denominator conventions)."""

    tp: int
    n_picks: int
    n_reference: int

    @property
    def fp(self) -> int:
        return self.n_picks - self.tp

    @property
    def fn(self) -> int:
        return self.n_reference - self.tp

    @property
    def precision(self) -> float:
        return self.tp / self.n_picks if self.n_picks else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_reference if self.n_reference else 0.0

    @property
    def f1(self) -> float:
        # 2TP / (picks + references): the harmonic mean of precision and recall, 0 when both are.
        total = self.n_picks + self.n_reference
        return 2 * self.tp / total if self.tp else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.tp + other.tp,
            self.n_picks + other.n_picks,
            self.n_reference + other.n_reference,
        )

    @staticmethod
    def total(scores: Iterable[Score]) -> Score:
        result = Score(0, 0, 0)
        for score in scores:
            result = result + score
        return result


def score_picks(picks: Picks, reference: Picks, radius: float) -> Score:
    """Precision, recall and F1 of ``picks`` against ``reference`` with optimal matching."""
    matched = match_picks(picks.xy, reference.xy, radius)
    return Score(len(matched), len(picks), len(reference))


def inside(picks: Picks, image_shape: tuple[int, int], border: float) -> Picks:
    """The picks whose centre lies on pixels ``border .. size-1-border`` of a (rows, cols) image.

    With ``border`` <= 0 every pick is kept.
    """
    if border <= 0:
        return picks
    rows, cols = image_shape
    keep = (
        (picks.x >= border - 0.5)
        & (picks.x <= cols - border - 0.5)
        & (picks.y >= border - 0.5)
        & (picks.y <= rows - border - 0.5)
    )
    return picks.subset(keep)


# --------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class Sweep:
    """Precision and recall at every distinct score threshold, pooled over micrographs.

    ``thresholds`` are in descending order; point k counts the picks with score >= threshold k
    (plus every pick without a score).
    """

    thresholds: np.ndarray
    tp: np.ndarray
    n_picks: np.ndarray
    n_reference: int

    @property
    def precision(self) -> np.ndarray:
        return np.divide(self.tp, self.n_picks, out=np.zeros(self.tp.shape), where=self.n_picks > 0)

    @property
    def recall(self) -> np.ndarray:
        if self.n_reference == 0:
            return np.zeros(self.tp.shape)
        return self.tp / self.n_reference

    @property
    def f1(self) -> np.ndarray:
        total = self.n_picks + self.n_reference
        return np.divide(2 * self.tp, total, out=np.zeros(self.tp.shape), where=self.tp > 0)

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.f1))  # first maximum: the highest threshold among ties

    @property
    def best_f1(self) -> float:
        return float(self.f1[self.best_index])

    @property
    def best_threshold(self) -> float:
        return float(self.thresholds[self.best_index])

    @property
    def average_precision(self) -> float:
        recall = self.recall
        steps = np.diff(np.r_[0.0, recall])
        return float(np.sum(steps * self.precision))

    def curve(self, max_points: int = CURVE_POINTS) -> list[list[float]]:
        """``[[threshold, precision, recall], ...]`` thinned to at most ``max_points`` points,
        keeping the first, the last and the best-F1 point."""
        n = self.thresholds.size
        if n <= max_points:
            index = np.arange(n)
        else:
            even = np.round(np.linspace(0, n - 1, max_points - 1)).astype(int)
            index = np.unique(np.r_[even, self.best_index])
        precision, recall = self.precision, self.recall
        return [[float(self.thresholds[k]), float(precision[k]), float(recall[k])] for k in index]


def _kuhn_increments(picks: Picks, reference: Picks, radius: float) -> np.ndarray:
    """For picks added in descending score order (no score first), 1 where the maximum
    matching grows by that pick, else 0; returned in the picks' own order."""
    increments = np.zeros(len(picks), dtype=np.int64)
    i, j, _ = _neighbours(picks.xy, reference.xy, radius)
    if i.size == 0:
        return increments
    order = np.argsort(i, kind="stable")
    i, j = i[order], j[order]
    starts = np.searchsorted(i, np.arange(len(picks) + 1))
    adjacency = [j[starts[p] : starts[p + 1]].tolist() for p in range(len(picks))]
    owner = [-1] * len(reference)  # pick matched to each reference
    seen = [-1] * len(reference)  # the search (pick) that last visited each reference
    score = np.where(np.isnan(picks.score), np.inf, picks.score)
    for root in np.argsort(-score, kind="stable").tolist():
        if adjacency[root] and _augment(root, adjacency, owner, seen):
            increments[root] = 1
    return increments


def _augment(root: int, adjacency: list[list[int]], owner: list[int], seen: list[int]) -> bool:
    """One augmenting-path search from pick ``root`` (iterative DFS); applies it if found."""
    stack = [root]
    position = [0]
    via: list[int] = []  # via[t]: the reference leading from stack[t] to stack[t + 1]
    while stack:
        pick = stack[-1]
        neighbours = adjacency[pick]
        k = position[-1]
        if k == 0:  # look ahead: a free reference right here ends the search at once
            for ref in neighbours:
                if owner[ref] < 0:
                    via.append(ref)
                    for p, r in zip(stack, via, strict=True):
                        owner[r] = p
                    return True
        if k == len(neighbours):
            stack.pop()
            position.pop()
            if via:
                via.pop()
            continue
        position[-1] = k + 1
        ref = neighbours[k]
        if seen[ref] == root:
            continue
        seen[ref] = root
        if owner[ref] < 0:
            via.append(ref)
            for p, r in zip(stack, via, strict=True):
                owner[r] = p
            return True
        stack.append(owner[ref])
        position.append(0)
        via.append(ref)
    return False


def sweep_thresholds(pairs: Sequence[tuple[Picks, Picks]], radius: float) -> Sweep | None:
    """The pooled precision/recall curve of (picks, reference) pairs, or None without scores."""
    radius = _check_radius(radius)
    if not any(picks.has_scores for picks, _ in pairs):
        return None
    scores, increments = [], []
    n_reference = 0
    for picks, reference in pairs:
        scores.append(np.where(np.isnan(picks.score), np.inf, picks.score))
        increments.append(_kuhn_increments(picks, reference, radius))
        n_reference += len(reference)
    score = np.concatenate(scores)
    increment = np.concatenate(increments)
    order = np.argsort(-score, kind="stable")
    score, increment = score[order], increment[order]
    tp = np.cumsum(increment)
    kept = np.arange(1, score.size + 1)
    # The last pick of each distinct finite score closes that threshold's point.
    last = np.flatnonzero(np.r_[score[1:] != score[:-1], True] & np.isfinite(score))
    return Sweep(score[last], tp[last], kept[last], n_reference)


# --------------------------------------------------------------------------- folders


class MicrographScore(NamedTuple):
    name: str
    score: Score


@dataclass
class Report:
    """The result of :func:`evaluate_folders`."""

    total: Score
    micrographs: list[MicrographScore]
    sweep: Sweep | None = None
    errors: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # picked micrographs with no reference
    radius: float = 0.0
    border: float = 0.0


@dataclass
class _Entry:
    path: Path
    root: str
    picks: Picks | None = None
    error: str | None = None


def _star_files(folder: Path, suffix: str | None, what: str) -> list[Path]:
    if not folder.exists():
        raise UserError(f"{folder}: no such folder ({what})")
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder ({what})")
    try:
        names = os.listdir(folder)
    except PermissionError:
        raise UserError(f"{folder}: permission denied ({what})") from None
    stars = []
    for name in names:
        if not name.endswith(".star") or name.startswith("."):
            continue
        stem = name[: -len(".star")]
        if stem.endswith(FALSE_POSITIVES):
            continue
        if suffix and not (stem.endswith("_" + suffix) and len(stem) > len(suffix) + 1):
            continue
        if (folder / name).is_file():
            stars.append(folder / name)
    if not stars:
        wanted = f"*_{suffix}.star" if suffix else "*.star"
        raise UserError(f"{folder}: no {wanted} pick files ({what})")
    return sorted(stars, key=lambda p: natural_key(p.name))


def _micrograph_files(folder: Path) -> dict[str, Path]:
    try:
        return {path.stem: path for path in scan_folder(folder)}
    except UserError:
        return {}


def _load_folder(
    folder: Path, suffix: str | None, what: str, known_roots: frozenset[str] = frozenset()
) -> dict[str, _Entry]:
    """``{root: entry}`` of a folder of per-micrograph STAR files (see evaluate_folders)."""
    suffix = suffix.lstrip("_") if suffix else None
    stars = _star_files(folder, suffix, what)
    entries: list[_Entry] = []
    unresolved: list[_Entry] = []
    for path in stars:
        stem = path.stem
        if suffix:
            entries.append(_Entry(path, stem[: -len(suffix) - 1]))
            continue
        try:
            names = {Path(name).stem for name in read_micrograph_names(path)}
        except StarError as error:
            names, entry = set(), _Entry(path, stem, error=str(error))
        else:
            entry = _Entry(path, stem)
        root = longest_root(stem, frozenset(names)) if names else None
        if root is not None:
            entry.root = root
            entries.append(entry)
        else:
            unresolved.append(entry)
    if unresolved:
        micrograph_roots = frozenset(_micrograph_files(folder.parent))
        tail = common_tail(path.stem for path in stars)
        for entry in unresolved:
            stem = entry.path.stem
            root = longest_root(stem, micrograph_roots) or longest_root(stem, known_roots)
            if root is None:
                root = stem[: -len(tail)] if tail else stem
            entry.root = root
            entries.append(entry)
    by_root: dict[str, _Entry] = {}
    for entry in entries:
        if entry.root in by_root:
            other = by_root[entry.root]
            raise UserError(
                f"{folder}: two pick files for micrograph {entry.root} "
                f"({other.path.name}, {entry.path.name}); choose one set with a suffix"
            )
        by_root[entry.root] = entry
    for entry in by_root.values():
        if entry.error is None:
            try:
                entry.picks = read_picks(entry.path)
            except StarError as error:
                entry.error = str(error)
    return by_root


def _shape_finder(
    image_shape: tuple[int, int] | None, folders: Sequence[Path]
) -> tuple[dict[str, Path], tuple[int, int] | None]:
    if image_shape is not None:
        rows, cols = (int(v) for v in image_shape)
        if rows <= 0 or cols <= 0:
            raise UserError(f"image size must be positive, not {image_shape}")
        return {}, (rows, cols)
    found: dict[str, Path] = {}
    for folder in folders:
        for root, path in _micrograph_files(folder).items():
            found.setdefault(root, path)
    return found, None


def evaluate_folders(
    picks_dir: str | os.PathLike[str],
    reference_dir: str | os.PathLike[str],
    radius: float,
    *,
    picks_suffix: str | None = None,
    reference_suffix: str | None = None,
    border: float = 0.0,
    image_shape: tuple[int, int] | None = None,
) -> Report:
    """Score a folder of per-micrograph pick STAR files against a folder of reference ones.

    Pairing is by micrograph root (``*_falsepositives.star`` files are ignored):

    - with ``picks_suffix`` / ``reference_suffix``, only ``<root>_<suffix>.star`` files are
      used and the root is the name before ``_<suffix>``;
    - otherwise the root is the stem of the file's ``rlnMicrographName`` when that is the file
      stem or a ``_``-separated prefix of it; else the longest micrograph root (``*.mrc``,
      ``*.tif``, ``*.tiff`` in the folder's parent, Warp's ``<input>/matching/`` layout); for
      pick files, else the longest reference root; else the file stem minus the tail that all
      the folder's stems share (``mic1_manual``, ``mic10_manual`` -> ``mic1``, ``mic10``).

    A reference micrograph without a pick file counts as 0 picks (all its references missed).
    A picked micrograph without a reference is listed in ``Report.unmatched``, not scored.
    A STAR file that cannot be read becomes a line in ``Report.errors`` and its micrograph is
    left out of the scores; the others are scored.

    Args:
        radius: match radius in px (commonly half the particle diameter).
        border: ignore picks and references within this many px of the image edge.
        image_shape: (rows, cols) of every micrograph, for ``border``; when None the size is
            read from the micrograph headers beside either folder.

    Raises:
        UserError: a folder is missing or has no pick files, two files claim one micrograph,
            no pick file belongs to any reference micrograph, or the border needs an image
            size that cannot be found.
    """
    radius = _check_radius_user(radius)
    border = float(border)
    if not math.isfinite(border) or border < 0:
        raise UserError(f"the border must be a number of pixels >= 0, not {border}")
    picks_dir, reference_dir = Path(picks_dir), Path(reference_dir)
    reference = _load_folder(reference_dir, reference_suffix, "reference")
    picked = _load_folder(picks_dir, picks_suffix, "picks", frozenset(reference))
    if not set(picked) & set(reference):
        raise UserError(
            f"{picks_dir}: no pick file belongs to a micrograph of {reference_dir} "
            f"(picks: {_examples(picked)}; reference: {_examples(reference)})"
        )
    micrograph_paths, shape = _shape_finder(image_shape, [reference_dir.parent, picks_dir.parent])
    scored: list[MicrographScore] = []
    pairs: list[tuple[Picks, Picks]] = []
    errors: list[str] = []
    for root in sorted(set(reference) | set(picked), key=natural_key):
        ref_entry, pick_entry = reference.get(root), picked.get(root)
        broken = [e.error for e in (ref_entry, pick_entry) if e is not None and e.error]
        errors.extend(f"{root}: {message}" for message in broken)
        if ref_entry is None or broken:
            continue
        picks = pick_entry.picks if pick_entry is not None else Picks()
        ref = ref_entry.picks
        assert picks is not None and ref is not None
        if border > 0:
            try:
                size = shape or _micrograph_shape(root, micrograph_paths, reference_dir)
            except MicrographError as error:
                errors.append(f"{root}: {error}")
                continue
            picks, ref = inside(picks, size, border), inside(ref, size, border)
        scored.append(MicrographScore(root, score_picks(picks, ref, radius)))
        pairs.append((picks, ref))
    unmatched = sorted(set(picked) - set(reference), key=natural_key)
    return Report(
        total=Score.total(m.score for m in scored),
        micrographs=scored,
        sweep=sweep_thresholds(pairs, radius),
        errors=errors,
        unmatched=unmatched,
        radius=radius,
        border=border,
    )


def _check_radius_user(radius: float) -> float:
    try:
        return _check_radius(radius)
    except (TypeError, ValueError):
        raise UserError(f"the match radius must be a number of pixels >= 0, not {radius}") from None


def _micrograph_shape(root: str, paths: dict[str, Path], reference_dir: Path) -> tuple[int, int]:
    if root not in paths:
        raise UserError(
            f"--border needs the image size, but no micrograph {root}.mrc/.tif is beside "
            f"{reference_dir}; give the image size"
        )
    return read_info(paths[root]).shape


def _examples(entries: dict[str, _Entry], limit: int = 3) -> str:
    roots = sorted(entries, key=natural_key)
    text = ", ".join(roots[:limit])
    return text + (f", … ({len(roots)} in all)" if len(roots) > limit else "")


# --------------------------------------------------------------------------- output


def format_report(report: Report) -> str:
    """A table of precision, recall and F1 per micrograph and in total, then the sweep."""
    rows = [(m.name, m.score) for m in report.micrographs] + [("total", report.total)]
    width = max(len("micrograph"), *(len(name) for name, _ in rows))
    header = (
        f"{'micrograph':<{width}}  {'picks':>7}  {'ref':>7}  {'TP':>7}  "
        f"{'precision':>9}  {'recall':>7}  {'F1':>6}"
    )
    lines = [header, "-" * len(header)]
    for k, (name, score) in enumerate(rows):
        if k == len(rows) - 1:
            lines.append("-" * len(header))
        lines.append(
            f"{name:<{width}}  {score.n_picks:>7}  {score.n_reference:>7}  {score.tp:>7}  "
            f"{score.precision:>9.3f}  {score.recall:>7.3f}  {score.f1:>6.3f}"
        )
    setting = f"match radius {report.radius:g} px"
    if report.border > 0:
        setting += f", border {report.border:g} px ignored"
    lines.append(setting)
    if report.sweep is not None:
        sweep = report.sweep
        lines.append(
            f"best F1 {sweep.best_f1:.3f} at threshold {sweep.best_threshold:.4g} "
            f"(precision {sweep.precision[sweep.best_index]:.3f}, "
            f"recall {sweep.recall[sweep.best_index]:.3f}); "
            f"average precision {sweep.average_precision:.3f}"
        )
    if report.unmatched:
        lines.append(
            f"not scored, no reference: {', '.join(report.unmatched)} "
            f"({len(report.unmatched)} micrograph{'s' if len(report.unmatched) != 1 else ''})"
        )
    if report.errors:
        lines.append(f"errors ({len(report.errors)}, these micrographs are not scored):")
        lines.extend(f"  {line}" for line in report.errors)
    return "\n".join(lines)


def _score_json(score: Score) -> dict[str, float | int]:
    return {
        "precision": score.precision,
        "recall": score.recall,
        "f1": score.f1,
        "tp": score.tp,
        "picks": score.n_picks,
        "reference": score.n_reference,
    }


def report_json(report: Report) -> dict[str, object]:
    """The report as plain JSON-ready data (see the module docstring for the conventions)."""
    result: dict[str, object] = {
        **_score_json(report.total),
        "radius": report.radius,
        "border": report.border,
        "micrographs": [{"name": m.name, **_score_json(m.score)} for m in report.micrographs],
        "unmatched": list(report.unmatched),
        "errors": list(report.errors),
    }
    if report.sweep is not None:
        result["sweep"] = {
            "best_f1": report.sweep.best_f1,
            "best_threshold": report.sweep.best_threshold,
            "average_precision": report.sweep.average_precision,
            "curve": report.sweep.curve(),
        }
    return result

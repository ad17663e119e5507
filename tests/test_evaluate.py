"""Scoring picks: optimal matching, precision/recall/F1, the threshold sweep, folders, reports."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from boxnet_tui.errors import UserError
from boxnet_tui.evaluate import (
    Score,
    evaluate_folders,
    format_report,
    inside,
    match_picks,
    report_json,
    score_picks,
    sweep_thresholds,
)
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, read_picks, write_picks

# ----------------------------------------------------------------------------- matching


def test_two_picks_on_one_reference_count_once():
    matched = match_picks(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.5, 0.0]]), 2.0)
    assert len(matched) == 1
    score = score_picks(Picks([0, 1], [0, 0]), Picks([0.5], [0]), 2.0)
    assert (score.tp, score.fp, score.fn) == (1, 1, 0)
    assert score.precision == 0.5 and score.recall == 1.0
    assert score.f1 == pytest.approx(2 / 3)


def test_optimal_matching_finds_more_than_greedy_nearest():
    # p0 is nearest to r1, but r1 is p1's only neighbour: greedy nearest gets 1, optimal 2.
    picks = np.array([[1.6, 0.0], [4.8, 0.0]])
    reference = np.array([[0.0, 0.0], [3.0, 0.0]])
    matched = match_picks(picks, reference, 2.5)
    assert sorted(map(tuple, matched.tolist())) == [(0, 0), (1, 1)]


def test_among_maximum_matchings_the_shortest_total_distance_wins():
    picks = np.array([[0.0, 0.0], [10.0, 0.0]])
    reference = np.array([[9.0, 0.0], [1.0, 0.0]])
    matched = match_picks(picks, reference, 10.0)
    assert matched.tolist() == [[0, 1], [1, 0]]


def test_radius_is_inclusive():
    assert len(match_picks(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), 5.0)) == 1
    assert len(match_picks(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), 4.999)) == 0
    assert len(match_picks(np.array([[2.0, 2.0]]), np.array([[2.0, 2.0]]), 0.0)) == 1


def test_empty_inputs_and_bad_arguments():
    assert match_picks(np.empty((0, 2)), np.array([[1.0, 1.0]]), 5).shape == (0, 2)
    assert match_picks(np.array([[1.0, 1.0]]), np.empty((0, 2)), 5).shape == (0, 2)
    with pytest.raises(ValueError, match="radius"):
        match_picks(np.zeros((1, 2)), np.zeros((1, 2)), -1)
    with pytest.raises(ValueError, match="NaN"):
        match_picks(np.array([[np.nan, 0.0]]), np.zeros((1, 2)), 1)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        match_picks(np.zeros((2, 3)), np.zeros((1, 2)), 1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=6),
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=6),
    st.sampled_from([1.0, 2.5, 4.0]),
)
def test_matching_agrees_with_brute_force(picks, reference, radius):
    a = np.array(picks, dtype=float).reshape(-1, 2)
    b = np.array(reference, dtype=float).reshape(-1, 2)
    distance = np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1))
    best = (0, 0.0)
    rows = range(len(a))
    for k in range(min(len(a), len(b)), 0, -1):
        sums = [
            sum(distance[i, j] for i, j in zip(chosen, cols, strict=True))
            for chosen in itertools.combinations(rows, k)
            for cols in itertools.permutations(range(len(b)), k)
            if all(distance[i, j] <= radius for i, j in zip(chosen, cols, strict=True))
        ]
        if sums:
            best = (k, min(sums))
            break
    matched = match_picks(a, b, radius)
    assert len(matched) == best[0]
    assert len(set(matched[:, 0])) == len(set(matched[:, 1])) == len(matched)
    total = float(distance[matched[:, 0], matched[:, 1]].sum()) if len(matched) else 0.0
    assert total == pytest.approx(best[1])


def test_many_picks_stay_fast():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 4096, (3000, 2))
    picks = reference + rng.normal(0, 4, reference.shape)
    assert len(match_picks(picks, reference, 27)) == 3000


# ----------------------------------------------------------------------------- scores


def test_precision_recall_f1_arithmetic_and_edge_cases():
    score = Score(3, 4, 6)
    assert (score.precision, score.recall) == (0.75, 0.5)
    assert score.f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert (score.fp, score.fn) == (1, 3)
    for empty in (Score(0, 0, 5), Score(0, 3, 0), Score(0, 0, 0)):
        assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)
    assert Score(2, 2, 2).f1 == 1.0
    assert Score.total([Score(1, 2, 3), Score(4, 5, 6)]) == Score(5, 7, 9)


def test_inside_keeps_the_pixels_off_the_border():
    picks = Picks([19.4, 19.5, 100, 179.5, 179.6], [100, 100, 100, 100, 100])
    kept = inside(picks, (200, 200), 20)
    assert kept.x.tolist() == [19.5, 100, 179.5]
    assert len(inside(picks, (200, 200), 0)) == 5


# ----------------------------------------------------------------------------- sweep


def test_sweep_on_a_hand_made_case():
    picks = Picks([0, 50, 10], [0, 50, 0], [0.9, 0.8, 0.7])  # TP, FP, TP
    reference = Picks([0, 10, 100], [0, 0, 100])
    sweep = sweep_thresholds([(picks, reference)], 2.0)
    assert sweep.thresholds.tolist() == [0.9, 0.8, 0.7]
    assert sweep.tp.tolist() == [1, 1, 2]
    np.testing.assert_allclose(sweep.precision, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(sweep.recall, [1 / 3, 1 / 3, 2 / 3])
    # AP = sum (R_k - R_{k-1}) P_k = 1/3 * 1 + 0 * 1/2 + 1/3 * 2/3 = 5/9
    assert sweep.average_precision == pytest.approx(5 / 9)
    assert sweep.best_f1 == pytest.approx(2 / 3)
    assert sweep.best_threshold == 0.7


def test_sweep_counts_the_exact_optimum_not_greedy():
    # The better-scored pick would take the lone neighbour of the other in a greedy match.
    picks = Picks([1.6, 4.8], [0, 0], [0.9, 0.5])
    reference = Picks([0, 3], [0, 0])
    sweep = sweep_thresholds([(picks, reference)], 2.5)
    assert sweep.tp.tolist() == [1, 2]
    assert sweep.best_f1 == 1.0


def test_sweep_is_pooled_and_its_last_point_equals_score_picks():
    rng = np.random.default_rng(3)
    pairs, scores = [], []
    for _ in range(4):
        reference = rng.uniform(0, 500, (60, 2))
        xy = np.r_[reference[:50] + rng.normal(0, 3, (50, 2)), rng.uniform(0, 500, (20, 2))]
        picks = Picks(xy[:, 0], xy[:, 1], rng.uniform(size=len(xy)).round(2))  # with ties
        ref = Picks(reference[:, 0], reference[:, 1])
        pairs.append((picks, ref))
        scores.append(score_picks(picks, ref, 8))
    sweep = sweep_thresholds(pairs, 8)
    total = Score.total(scores)
    assert sweep.tp[-1] == total.tp and sweep.n_picks[-1] == total.n_picks
    assert len(np.unique(sweep.thresholds)) == len(sweep.thresholds)
    assert np.all(np.diff(sweep.thresholds) < 0) and np.all(np.diff(sweep.tp) >= 0)
    for k in (0, len(sweep.thresholds) // 2):
        kept = [(p.above(sweep.thresholds[k]), r) for p, r in pairs]
        assert sweep.tp[k] == sum(score_picks(p, r, 8).tp for p, r in kept)
    assert 0 < sweep.average_precision <= sweep.recall[-1]
    curve = sweep.curve(max_points=11)
    assert len(curve) <= 11 and [sweep.best_threshold] == [
        c[0] for c in curve if c[0] == sweep.best_threshold
    ]


def test_sweep_needs_scores_and_keeps_unscored_picks():
    reference = Picks([0, 10], [0, 0])
    assert sweep_thresholds([(Picks([0], [0]), reference)], 2) is None
    mixed = Picks([0, 10], [0, 0], [np.nan, 0.5])
    sweep = sweep_thresholds([(mixed, reference)], 2)
    assert sweep.thresholds.tolist() == [0.5] and sweep.tp.tolist() == [2]


# ----------------------------------------------------------------------------- folders


def _write(path: Path, xy, name: str | None = None, scores=None) -> None:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    picks = Picks(xy[:, 0], xy[:, 1], scores)
    if name is None:  # a file without rlnMicrographName
        path.parent.mkdir(parents=True, exist_ok=True)
        table = {"rlnCoordinateX": picks.x, "rlnCoordinateY": picks.y}
        starfile.write(pd.DataFrame(table), path, overwrite=True)
    else:
        write_picks(path, picks, name)


def _by_name(report):
    return {m.name: m.score for m in report.micrographs}


def test_roots_mic1_and_mic10_pair_correctly_and_falsepositives_are_ignored(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    _write(ref / "mic1_manual.star", [[100, 100]], "mic1.mrc")
    _write(ref / "mic10_manual.star", [[500, 500], [600, 600]], "mic10.mrc")
    _write(ref / "mic1_manual_falsepositives.star", [[9, 9]] * 5, "mic1.mrc")
    _write(picks / "mic1_BoxNet.star", [[101, 100]], "mic1.mrc")
    _write(picks / "mic10_BoxNet.star", [[500, 502]], "mic10.mrc")
    report = evaluate_folders(picks, ref, 5)
    assert _by_name(report) == {"mic1": Score(1, 1, 1), "mic10": Score(1, 1, 2)}
    assert report.total == Score(2, 2, 3)
    assert report.errors == [] and report.unmatched == [] and report.sweep is None


def test_common_tail_gives_the_roots_without_micrograph_names(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    for folder, tail in ((ref, "manual"), (picks, "BoxNet_run")):
        _write(folder / f"mic1_{tail}.star", [[100, 100]])
        _write(folder / f"mic10_{tail}.star", [[500, 500]])
    report = evaluate_folders(picks, ref, 5)
    assert _by_name(report) == {"mic1": Score(1, 1, 1), "mic10": Score(1, 1, 1)}


def test_micrographs_beside_the_folder_give_the_roots(tmp_path):
    folder = tmp_path / "input"
    (folder / "matching").mkdir(parents=True)
    for root in ("mic1", "mic10"):
        (folder / f"{root}.mrc").write_bytes(b"")  # only listed, never opened
    _write(folder / "matching" / "mic1_BoxNet.star", [[100, 100]])
    _write(folder / "matching" / "mic10_other.star", [[500, 500]])  # no common tail
    ref = tmp_path / "ref"
    _write(ref / "mic1_manual.star", [[100, 100]], "mic1.mrc")
    _write(ref / "mic10_manual.star", [[500, 500]], "mic10.mrc")
    report = evaluate_folders(folder / "matching", ref, 5)
    assert _by_name(report) == {"mic1": Score(1, 1, 1), "mic10": Score(1, 1, 1)}


def test_micrograph_name_column_gives_the_root(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    _write(ref / "mic1_manual.star", [[100, 100]], "mic1.mrc")
    _write(ref / "mic10_manual.star", [[500, 500]], "mic10.mrc")
    # Different tails: only the rlnMicrographName column tells the roots.
    _write(picks / "mic1_run3.star", [[100, 100]], "/data/mic1.mrc")
    _write(picks / "mic10_run7.star", [[500, 500]], "mic10.mrc")
    # A name that is no prefix of the file name is not trusted: the file stem decides.
    _write(picks / "mic2_run1.star", [[7, 7]], "elsewhere.mrc")
    report = evaluate_folders(picks, ref, 5)
    assert _by_name(report) == {"mic1": Score(1, 1, 1), "mic10": Score(1, 1, 1)}
    assert report.unmatched == ["mic2_run1"]


def test_suffix_filter_chooses_one_pick_set(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    _write(ref / "mic1_manual.star", [[100, 100], [200, 200]], "mic1.mrc")
    _write(picks / "mic1_BoxNet.star", [[100, 100]], "mic1.mrc")
    _write(picks / "mic1_manual.star", [[100, 100], [200, 200]], "mic1.mrc")
    with pytest.raises(UserError, match="two pick files for micrograph mic1"):
        evaluate_folders(picks, ref, 5)
    report = evaluate_folders(picks, ref, 5, picks_suffix="BoxNet")
    assert report.total == Score(1, 1, 2)
    report = evaluate_folders(picks, picks, 5, picks_suffix="BoxNet", reference_suffix="manual")
    assert report.total == Score(1, 1, 2)
    with pytest.raises(UserError, match=r"no \*_other.star pick files"):
        evaluate_folders(picks, ref, 5, picks_suffix="other")


def test_missing_pick_file_counts_as_zero_picks_and_extra_picks_are_listed(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    _write(ref / "mic1_manual.star", [[100, 100]], "mic1.mrc")
    _write(ref / "mic2_manual.star", [[100, 100], [300, 300]], "mic2.mrc")
    _write(picks / "mic1_BoxNet.star", [[100, 100]], "mic1.mrc")
    _write(picks / "mic3_BoxNet.star", [[100, 100]] * 4, "mic3.mrc")
    report = evaluate_folders(picks, ref, 5)
    assert _by_name(report) == {"mic1": Score(1, 1, 1), "mic2": Score(0, 0, 2)}
    assert report.total == Score(1, 1, 3)
    assert report.unmatched == ["mic3"]
    assert "mic3" in format_report(report)


def test_bad_star_is_reported_and_the_others_are_scored(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    for root in ("mic1", "mic2", "mic3"):
        _write(ref / f"{root}_manual.star", [[100, 100]], f"{root}.mrc")
    _write(picks / "mic1_BoxNet.star", [[100, 100]], "mic1.mrc")
    (picks / "mic2_BoxNet.star").write_text(
        "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\nab cd\n"
    )
    _write(picks / "mic3_BoxNet.star", [[100, 100]], "mic3.mrc")
    (ref / "mic3_manual.star").write_bytes(b"\x00\xff garbage")
    report = evaluate_folders(picks, ref, 5)
    assert _by_name(report) == {"mic1": Score(1, 1, 1)}
    assert len(report.errors) == 2
    assert report.errors[0].startswith("mic2: ") and "mic2_BoxNet.star" in report.errors[0]
    assert report.errors[1].startswith("mic3: ") and "mic3_manual.star" in report.errors[1]
    assert all("\n" not in line for line in report.errors)
    assert "errors (2" in format_report(report)


def test_empty_or_missing_folders_are_one_line_errors(tmp_path):
    ref = tmp_path / "ref"
    _write(ref / "mic1_manual.star", [[100, 100]], "mic1.mrc")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi")
    _write(tmp_path / "fp" / "mic1_x_falsepositives.star", [[1, 1]], "mic1.mrc")
    for folder in (empty, tmp_path / "other", tmp_path / "fp"):
        with pytest.raises(UserError, match=r"no \*\.star pick files") as caught:
            evaluate_folders(folder, ref, 5)
        assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="no such folder"):
        evaluate_folders(tmp_path / "nope", ref, 5)
    with pytest.raises(UserError, match="reference"):
        evaluate_folders(ref, empty, 5)
    _write(tmp_path / "unrelated" / "other_BoxNet.star", [[1, 1]], "other.mrc")
    with pytest.raises(UserError, match="no pick file belongs"):
        evaluate_folders(tmp_path / "unrelated", ref, 5)
    with pytest.raises(UserError, match="radius"):
        evaluate_folders(ref, ref, -2)


def test_border_ignores_picks_and_references_near_the_edge(tmp_path):
    ref, picks = tmp_path / "input" / "ref", tmp_path / "input" / "matching"
    _write(ref / "mic1_manual.star", [[10, 100], [100, 100], [150, 250]], "mic1.mrc")
    _write(picks / "mic1_BoxNet.star", [[10, 101], [100, 101], [150, 290]], "mic1.mrc")
    assert evaluate_folders(picks, ref, 5).total == Score(2, 3, 3)
    report = evaluate_folders(picks, ref, 5, border=20, image_shape=(300, 200))
    assert report.total == Score(1, 1, 2)  # (10, y) gone on both sides; (150, 290) too
    with pytest.raises(UserError, match="image size"):
        evaluate_folders(picks, ref, 5, border=20)
    # The size comes from the micrograph header when one is beside the folder.
    write_micrograph(tmp_path / "input" / "mic1.mrc", np.zeros((300, 200), np.float32), 1.0)
    assert evaluate_folders(picks, ref, 5, border=20).total == Score(1, 1, 2)


def test_report_json_and_table(tmp_path):
    ref, picks = tmp_path / "ref", tmp_path / "picks"
    _write(ref / "mic1_manual.star", [[0, 0], [10, 0], [100, 100]], "mic1.mrc")
    _write(picks / "mic1_BoxNet.star", [[0, 0], [50, 50], [10, 0]], "mic1.mrc", [0.9, 0.8, 0.7])
    report = evaluate_folders(picks, ref, 2)
    data = json.loads(json.dumps(report_json(report)))
    assert {"precision", "recall", "f1", "micrographs", "errors", "sweep"} <= set(data)
    assert data["micrographs"] == [
        {
            "name": "mic1",
            "precision": pytest.approx(2 / 3),
            "recall": pytest.approx(2 / 3),
            "f1": pytest.approx(2 / 3),
            "tp": 2,
            "picks": 3,
            "reference": 3,
        }
    ]
    sweep = data["sweep"]
    assert sweep["best_f1"] == pytest.approx(2 / 3) and sweep["best_threshold"] == 0.7
    assert sweep["average_precision"] == pytest.approx(5 / 9)
    assert sweep["curve"][0] == [0.9, 1.0, pytest.approx(1 / 3)]
    text = format_report(report)
    assert "mic1" in text and "total" in text
    assert "best F1 0.667 at threshold 0.7" in text and "average precision 0.556" in text
    unscored = tmp_path / "unscored"
    _write(unscored / "mic1_BoxNet.star", [[0, 0]], "mic1.mrc")
    assert "sweep" not in report_json(evaluate_folders(unscored, ref, 2))


def test_curve_is_thinned_to_101_points():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1000, (500, 2))
    picks = Picks(xy[:, 0], xy[:, 1], rng.uniform(size=500))
    sweep = sweep_thresholds([(picks, Picks(xy[::2, 0], xy[::2, 1]))], 3)
    curve = sweep.curve()
    assert len(sweep.thresholds) == 500 and len(curve) <= 101
    assert curve[0][0] == sweep.thresholds[0] and curve[-1][0] == sweep.thresholds[-1]


# ----------------------------------------------------------------------------- real data


def _independent_tp(picks: Picks, reference: Picks, radius: float) -> int:
    """Maximum bipartite matching on the within-radius adjacency, by brute-force distances."""
    if len(picks) == 0 or len(reference) == 0:
        return 0
    dx = picks.x[:, None] - reference.x[None, :]
    dy = picks.y[:, None] - reference.y[None, :]
    adjacency = csr_matrix(dx * dx + dy * dy <= radius * radius)
    return int((maximum_bipartite_matching(adjacency, perm_type="column") >= 0).sum())


def test_agrees_with_an_independent_scorer_on_perturbed_real_picks(tmp_path, real_folder):
    reference_dir = real_folder / "matching"
    files = sorted(reference_dir.glob("*_manual.star"))
    assert len(files) == 16
    rng = np.random.default_rng(2024)
    picks_dir = tmp_path / "picks"
    expected = {}
    expected_inside = {}
    for path in files:
        root = path.name[: -len("_manual.star")]
        reference = read_picks(path)
        keep = rng.uniform(size=len(reference)) >= 0.1  # drop 10 %
        xy = reference.xy[keep] + rng.normal(0, 4.0, (int(keep.sum()), 2))
        xy = np.r_[xy, rng.uniform(0, 2048, (len(reference) // 10, 2))]  # add 10 % false
        picks = Picks(xy[:, 0], xy[:, 1], rng.uniform(size=len(xy)))
        write_picks(picks_dir / f"{root}_jitter.star", picks, f"{root}.mrc")
        picks = read_picks(picks_dir / f"{root}_jitter.star")  # as written (6 decimals)
        tp = _independent_tp(picks, reference, 27)
        expected[root] = Score(tp, len(picks), len(reference))
        a, b = inside(picks, (2048, 2048), 65), inside(reference, (2048, 2048), 65)
        expected_inside[root] = Score(_independent_tp(a, b, 27), len(a), len(b))
    report = evaluate_folders(picks_dir, reference_dir, 27)
    assert report.errors == [] and report.unmatched == []
    assert _by_name(report) == expected
    total = Score.total(expected.values())
    assert report.total == total
    assert abs(report.total.f1 - total.f1) < 0.01
    assert 0.8 < report.total.f1 < 0.95
    assert report.sweep is not None and report.sweep.tp[-1] == total.tp
    # The border read from the micrograph headers beside matching/ (65 px, as annotated).
    bordered = evaluate_folders(picks_dir, reference_dir, 27, border=65)
    assert _by_name(bordered) == expected_inside
    assert bordered.total.n_reference == total.n_reference  # no reference lies in the border
    assert not math.isnan(bordered.sweep.average_precision)

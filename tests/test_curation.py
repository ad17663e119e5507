"""The core under the app: session, saved state, view geometry, frames, prefetch."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from boxnet_tui.curation import CurationSession
from boxnet_tui.curation_state import StateStore, load_state, state_path
from boxnet_tui.display import Overlay, PreparedImage, View, render
from boxnet_tui.errors import UserError
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.micrograph_cache import Loaded, MicrographCache, load_prepared


def _folder(tmp_path: Path, count: int = 3, suffixes: tuple[str, ...] = ("BoxNet",)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        write_micrograph(tmp_path / f"mic{i + 1}.mrc", rng.normal(size=(200, 300)), 4.0)
        for suffix in suffixes:
            picks = Picks([50, 100, 150], [50, 100, 150], [0.9, 0.5, 0.2])
            write_picks(
                tmp_path / "matching" / f"mic{i + 1}_{suffix}.star", picks, f"mic{i + 1}.mrc"
            )
    return tmp_path


def test_state_round_trips_and_merges_two_writers(tmp_path):
    first, second = StateStore(tmp_path), StateStore(tmp_path)
    first.set_curated("mic1", True)
    second.set_threshold("BoxNet", 0.35)  # knows nothing of mic1's mark, must not drop it
    second.set_position("mic2", (10.0, 20.0), 2)
    state, warning = load_state(tmp_path)
    assert warning is None
    assert state.curated == {"mic1"} and state.set_thresholds == {"BoxNet": 0.35}
    assert (state.last_root, state.last_position, state.zoom) == ("mic2", (10.0, 20.0), 2)


def test_a_damaged_state_file_warns_and_starts_afresh(tmp_path):
    state_path(tmp_path).write_text("{not json")
    store = StateStore(tmp_path)
    assert store.warning is not None and "boxnet-tui.json" in store.warning
    store.set_curated("mic1", True)
    assert json.loads(state_path(tmp_path).read_text())["curated"] == ["mic1"]


@pytest.mark.parametrize("text", ['{"thresholds": [1]}', '{"last": "x"}', '{"curated": 5}'])
def test_a_hand_edited_state_of_the_wrong_shape_warns(tmp_path, text):
    state_path(tmp_path).write_text(text)
    store = StateStore(tmp_path)
    assert store.warning is not None and "unreadable curation state" in store.warning


def test_a_state_file_damaged_mid_session_keeps_this_sessions_marks(tmp_path):
    store = StateStore(tmp_path)
    store.set_curated("mic1", True)
    state_path(tmp_path).write_text("{torn")  # damaged by hand or another program
    store.set_threshold("BoxNet", 0.4)
    state, warning = load_state(tmp_path)
    assert warning is None and state.curated == {"mic1"}
    assert state.set_thresholds == {"BoxNet": 0.4}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"last": {"micrograph": "mic1", "position": [float("nan"), 5.0]}}, "position"),
        ({"last": {"micrograph": "mic1", "position": [1e308, 1e308]}}, "position"),
        ({"last": {"micrograph": "mic1", "position": [-3.0, 5.0]}}, "position"),
        ({"last": {"micrograph": "mic1", "position": [1.0]}}, "position"),
        ({"last": {"micrograph": "mic1", "zoom": -100000}}, "zoom"),
        ({"last": {"micrograph": "mic1", "zoom": 1e308}}, "zoom"),  # 2**zoom never ends
        ({"last": {"micrograph": "mic1", "zoom": 2.5}}, "zoom"),
        ({"diameter": 1e308}, "diameter"),
        ({"diameter": 5.0}, "diameter"),
        ({"diameter": float("nan")}, "diameter"),
        ({"diameter": "big"}, "diameter"),
        ({"set_thresholds": {"a": float("nan"), "b": 0.3}}, "threshold"),
        ({"set_thresholds": {"a": 7.0, "b": 0.3}}, "threshold"),
    ],
)
def test_out_of_range_state_values_fall_back_to_defaults_with_one_warning(tmp_path, data, field):
    # json.dumps writes NaN as the bare word NaN, which json.loads reads back
    state_path(tmp_path).write_text(json.dumps({"curated": ["mic2"], **data}))
    state, warning = load_state(tmp_path)
    assert warning is not None and "\n" not in warning and field in warning
    assert "boxnet-tui.json" in warning and "using the default" in warning
    assert state.curated == {"mic2"}  # what is sound is kept
    assert state.zoom == 0 or 0 <= state.zoom <= 5
    assert state.last_position is None or all(0 <= v < 1e6 for v in state.last_position)
    assert state.diameter is None or 10 <= state.diameter <= 700
    assert all(0 <= v <= 1 for v in state.set_thresholds.values())
    if field == "threshold":
        assert state.set_thresholds == {"b": 0.3}


def test_in_range_state_values_load_without_warning(tmp_path):
    data = {
        "diameter": 180.0,
        "set_thresholds": {"BoxNet": 0.25},
        "last": {"micrograph": "mic1", "position": [12.5, 30.0], "zoom": 3},
    }
    state_path(tmp_path).write_text(json.dumps(data))
    state, warning = load_state(tmp_path)
    assert warning is None
    assert (state.diameter, state.set_thresholds, state.zoom) == (180.0, {"BoxNet": 0.25}, 3)
    assert state.last_position == (12.5, 30.0)


def test_two_windows_marking_at_the_same_moment_keep_both_marks(tmp_path, monkeypatch):
    """Window B marks mic2 between window A's read and A's rename: without a lock A's write,
    built on what it read, drops B's mark."""
    first, second = StateStore(tmp_path), StateStore(tmp_path)
    real_replace = os.replace
    others: list[threading.Thread] = []

    def replace_after_another_window(src, dst):
        if not others and str(dst).endswith("boxnet-tui.json"):
            other = threading.Thread(target=second.set_curated, args=("mic2", True))
            others.append(other)
            other.start()
            other.join(timeout=0.5)  # with the lock it waits for us: that is the point
        real_replace(src, dst)

    monkeypatch.setattr("boxnet_tui.io.atomic.os.replace", replace_after_another_window)
    first.set_curated("mic1", True)
    others[0].join(timeout=10)
    assert not others[0].is_alive()
    state, _ = load_state(tmp_path)
    assert state.curated == {"mic1", "mic2"}
    assert second.state.curated >= {"mic2"}


def test_state_that_cannot_be_written_is_reported(tmp_path):
    (tmp_path / "boxnet-tui.json").mkdir()  # a folder where the file should be
    store = StateStore(tmp_path)
    store.set_curated("mic1", True)
    assert store.error is not None and "cannot save" in store.error
    assert store.state.curated == {"mic1"}  # still known for this session


def test_session_shows_the_newest_suffix_and_remembers_a_choice(tmp_path):
    folder = _folder(tmp_path, suffixes=("old", "new"))
    import os

    for star in (folder / "matching").glob("*_old.star"):
        os.utime(star, (1, 1))
    session = CurationSession(folder)
    assert session.suffix == "new" and set(session.suffixes) == {"new", "old"}
    session.set_suffix("old")
    assert CurationSession(folder).suffix == "old"
    assert CurationSession(folder, suffix="new").suffix == "new"


def test_a_state_file_suffix_that_leaves_the_folder_is_never_used(tmp_path):
    folder = _folder(tmp_path / "data", count=1)
    state = {"suffix": "x/../../../outside/evil", "curated": ["mic1"]}
    state_path(folder).write_text(json.dumps(state))
    session = CurationSession(folder)
    assert session.suffix == "BoxNet" and session.is_curated("mic1")  # the rest is kept
    warning = session.store.warning
    assert warning is not None and "boxnet-tui.json" in warning and "suffix" in warning
    assert "\n" not in warning
    session.editor(0).add(20.0, 20.0)
    session.toggle_curated("mic1")  # a write drops the bad suffix from the file
    assert json.loads(state_path(folder).read_text())["suffix"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    written = sorted(p.name for p in (folder / "matching").iterdir())
    assert written == [".mic1_BoxNet.star.lock", "mic1_BoxNet.star"]  # the lock: see io/locking


@pytest.mark.parametrize("suffix", ["q/../../../outside/pk", ".."])
def test_session_refuses_a_suffix_that_leaves_the_folder(tmp_path, suffix):
    folder = _folder(tmp_path, count=1)
    with pytest.raises(UserError, match=r"^suffix "):
        CurationSession(folder, suffix=suffix)
    session = CurationSession(folder)
    with pytest.raises(UserError, match=r"^suffix "):
        session.set_suffix(suffix)
    assert session.suffix == "BoxNet"


def test_session_counts_picks_above_the_display_threshold(tmp_path):
    session = CurationSession(_folder(tmp_path))
    entry = session.describe_entry(0)
    assert entry.picks == 3 and entry.shape == (200, 300) and entry.pixel_size == 4.0
    session.set_threshold(0.6)  # the shown set's, on every micrograph
    assert not any(e.described for e in session.entries)  # every count is made again
    session.update_entry(0)
    assert entry.picks == 1
    assert CurationSession(tmp_path).threshold == 0.6


def test_a_new_threshold_recounts_from_the_scores_read_once_until_the_file_changes(
    tmp_path, monkeypatch
):
    """Issue 12 at 10,000 micrographs: `[`/`]` recount every row; the STAR files are not read
    again unless they changed."""
    from boxnet_tui import curation

    folder = _folder(tmp_path)
    session = CurationSession(folder)
    reads: list[str] = []
    real = curation.read_picks

    def read_picks(path, *args, **kwargs):
        reads.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(curation, "read_picks", read_picks)
    entry = session.describe_entry(0)
    assert entry.picks == 3 and len(reads) == 1
    for threshold, count in ((0.6, 1), (0.0, 3), (0.95, 0)):
        session.set_threshold(threshold)
        session.describe_entry(0)
        assert entry.picks == count
    assert len(reads) == 1  # counted from the scores kept
    star = folder / "matching" / f"{entry.root}_BoxNet.star"
    write_picks(star, Picks([10, 20, 30], [10, 20, 30], [0.99, 0.97, 0.5]), f"{entry.root}.mrc")
    session.update_entry(0)
    assert len(reads) == 2 and entry.picks == 2  # changed: read again


def test_session_refuses_an_empty_folder(tmp_path):
    with pytest.raises(UserError, match="no micrographs"):
        CurationSession(tmp_path)


def test_session_lists_a_corrupt_micrograph_with_its_error(tmp_path):
    folder = _folder(tmp_path, count=2)
    (folder / "mic0.mrc").write_bytes(b"\0" * 100)
    session = CurationSession(folder)
    assert [e.root for e in session.entries] == ["mic0", "mic1", "mic2"]
    bad = session.describe_entry(0)
    assert bad.error is not None and "mic0.mrc" in bad.error
    with pytest.raises(UserError, match=r"mic0\.mrc"):
        session.editor(0)
    assert session.editor(1).root == "mic1"


def test_view_fits_then_zooms_and_maps_both_ways():
    view = View((1000, 2000), 200, 100, (1000, 500))
    assert view.scale == 10.0 and view.origin == (0.0, 0.0)
    zoomed = View((1000, 2000), 200, 100, (1000, 500), zoom=2)
    assert zoomed.scale == 2.5
    dx, dy = zoomed.to_display(1000, 500)
    assert (float(dx), float(dy)) == (100.0, 50.0)
    assert zoomed.to_micrograph(100, 50) == (1000.0, 500.0)


def test_view_follows_the_cursor_only_when_it_leaves():
    view = View((1000, 1000), 100, 100, (500, 500), zoom=2).clamped()  # shows 250x250
    assert view.follow(520, 480) is view
    moved = view.follow(900, 100)
    assert moved is not view
    x0, y0 = moved.origin
    assert x0 <= 900 <= x0 + 250 and y0 <= 100 <= y0 + 250
    assert moved.clamped().centre == moved.centre  # kept inside the micrograph


def test_frame_draws_picks_mask_and_black_outside():
    pixels = np.full((100, 200), 128, np.uint8)
    prepared = PreparedImage(pixels, 1, (100, 200), 1.0)
    view = View((100, 200), 200, 200, (100, 50))  # taller than the image: black bands
    mask = np.zeros((10, 20), bool)
    mask[:, :5] = True  # left quarter is junk
    overlay = Overlay(np.array([[150.0, 50.0]]), radius=10, mask=mask)
    frame = np.asarray(render(prepared, view, overlay))
    assert frame.shape == (200, 200, 3)
    assert (frame[10, 100] == 0).all()  # above the micrograph
    assert frame[100, 20, 0] > frame[100, 20, 1]  # red tint over the junk
    assert (frame[100, 100] == 128).all()  # plain micrograph
    assert frame[100, 160, 1] > 200  # the green circle's right edge at x = 160


def test_cache_keeps_only_the_wanted_micrographs(tmp_path):
    paths = [tmp_path / f"m{i}.mrc" for i in range(6)]
    loaded: list[Path] = []
    lock = threading.Lock()

    def load(path: Path, pixel_size: float | None) -> Loaded:
        with lock:
            loaded.append(path)
        return Loaded(path, error="fake")

    cache = MicrographCache(paths, load=load)
    cache.keep([2, 3, 1])
    assert cache.get(2).path == paths[2]
    cache.get(3)
    cache.get(1)
    cache.keep([3, 4, 2])
    assert cache.get(4).path == paths[4]
    assert sorted(cache._futures) == [2, 3, 4]  # 1 was dropped: memory flat in the folder size
    assert loaded.count(paths[2]) == 1  # kept, not read again
    cache.close()


def test_a_load_dropped_while_waited_for_is_loaded_again(tmp_path):
    paths = [tmp_path / f"m{i}.mrc" for i in range(4)]
    started, release = threading.Event(), threading.Event()

    def load(path: Path, pixel_size: float | None) -> Loaded:
        if path == paths[0]:
            started.set()
            release.wait(5)
        return Loaded(path, error="fake")

    cache = MicrographCache(paths, load=load)
    cache.keep([0, 1])  # 0 loads (slowly), 1 waits in the queue
    assert started.wait(5)
    waited: list[Loaded] = []
    waiter = threading.Thread(target=lambda: waited.append(cache.get(1)))
    waiter.start()
    cache.keep([0, 2])  # the user moved on: 1's queued load is cancelled under the waiter
    assert not cache.ready(1)
    release.set()
    waiter.join(5)
    assert waited and waited[0].path == paths[1]  # loaded again, not a CancelledError
    cache.close()


def test_load_prepared_turns_a_bad_file_into_one_line(tmp_path):
    bad = tmp_path / "bad.mrc"
    bad.write_bytes(b"\0" * 10)
    result = load_prepared(bad)
    assert result.image is None and "bad.mrc" in (result.error or "")


def test_distinct_names_drop_the_shared_prefix_at_a_field_boundary():
    from boxnet_tui.curation import distinct_names

    roots = ["Falcon_2012_06_12-14_33_35_0", "Falcon_2012_06_12-15_07_41_0"]
    assert distinct_names(roots) == ["…14_33_35_0", "…15_07_41_0"]
    # "Falcon_2012_06_12-1" is shared, but the cut never splits the field "14"/"15"
    assert distinct_names(["mic1", "mic2"]) == ["mic1", "mic2"]  # short prefix: kept
    assert distinct_names(["sample_", "sample_2"]) == ["sample_", "sample_2"]  # none empty
    assert distinct_names(["EMPIAR-10028_061", "EMPIAR-10028_315"]) == ["…061", "…315"]
    assert distinct_names(["only_one_name"]) == ["only_one_name"]

"""``boxnet-tui.json``: one display threshold per pick set and the folder's view settings, kept
across restarts; an older file loads (its per-micrograph thresholds become the sets'), and a bad
value is replaced by its default with one line."""

from __future__ import annotations

import json

import pytest

from boxnet_tui.curation_state import (
    CurationState,
    StateStore,
    load_state,
    pick_set_threshold,
    state_path,
    stored_threshold,
)
from boxnet_tui.display import DisplaySettings


def test_thresholds_and_view_settings_round_trip(tmp_path):
    store = StateStore(tmp_path)
    store.set_threshold("BoxNet", 0.6)
    store.set_threshold("manual", 0.25)
    store.set_threshold("loud", 7.0)  # clamped, as the keys would
    store.set_display(DisplaySettings(lowpass=None, clip=2.0), tab_by_score=True)
    store.set_view(suffix="manual", diameter=180.0)
    state, warning = load_state(tmp_path)
    assert warning is None
    assert state.set_thresholds == {"BoxNet": 0.6, "manual": 0.25, "loud": 1.0}
    assert state.display == DisplaySettings(lowpass=None, clip=2.0) and state.tab_by_score
    assert (state.suffix, state.diameter) == ("manual", 180.0)
    assert CurationState.from_json(state.to_json()) == state
    assert stored_threshold(tmp_path, "BoxNet") == 0.6
    assert stored_threshold(tmp_path, "never_set") == 0.0


def test_a_threshold_set_in_another_window_is_seen_the_view_settings_are_not(tmp_path):
    first, second = StateStore(tmp_path), StateStore(tmp_path)
    first.set_display(DisplaySettings(lowpass=40.0, clip=5.0), tab_by_score=True)
    second.set_threshold("BoxNet", 0.3)
    assert second.state.display == DisplaySettings()  # its own view, not the other window's
    first.set_curated("mic1", True)
    assert pick_set_threshold(first.state, "BoxNet") == 0.3
    # the file merges each change: the view the first window set is kept
    assert load_state(tmp_path)[0].display == DisplaySettings(lowpass=40.0, clip=5.0)


def test_a_file_without_the_new_keys_loads_with_defaults(tmp_path):
    old = {
        "version": 1,
        "curated": ["mic1"],
        "thresholds": {},
        "suffix": "BoxNet",
        "last": {"micrograph": "mic1", "position": [5.0, 6.0], "zoom": 1},
    }
    state_path(tmp_path).write_text(json.dumps(old))
    state, warning = load_state(tmp_path)
    assert warning is None
    assert state.curated == {"mic1"} and state.suffix == "BoxNet" and state.zoom == 1
    assert state.set_thresholds == {} and pick_set_threshold(state, "BoxNet") == 0.0
    assert state.display == DisplaySettings() and not state.tab_by_score


def test_per_micrograph_thresholds_of_an_older_file_become_each_sets(tmp_path):
    """What an older version hid stays hidden (their highest, for every set), said once."""
    old = {"curated": ["mic1"], "thresholds": {"mic1": 0.3, "mic2": 0.55}}
    state_path(tmp_path).write_text(json.dumps(old))
    store = StateStore(tmp_path)
    assert store.warning is not None and "\n" not in store.warning
    assert "per micrograph (0.30–0.55)" in store.warning and "0.55 for each" in store.warning
    assert pick_set_threshold(store.state, "BoxNet") == 0.55
    store.set_threshold("manual", 0.1)  # rewritten in the new form: said once only
    state, warning = load_state(tmp_path)
    assert warning is None and "thresholds" not in json.loads(state_path(tmp_path).read_text())
    assert pick_set_threshold(state, "manual") == 0.1
    assert pick_set_threshold(state, "BoxNet") == 0.55


@pytest.mark.parametrize(
    ("view", "word"),
    [
        ({"lowpass": 13.0}, "lowpass"),
        ({"lowpass": "strong"}, "lowpass"),
        ({"lowpass": float("nan")}, "lowpass"),
        ({"clip": 50}, "clip"),
        ({"clip": True}, "clip"),
        ({"tab_order": "sideways"}, "tab_order"),
        ({"tab_order": 1}, "tab_order"),
    ],
)
def test_a_bad_view_value_is_replaced_by_its_default_with_one_line(tmp_path, view, word):
    data = {
        "curated": ["mic2"],
        "set_thresholds": {"BoxNet": 0.4},
        "view": {"lowpass": 40.0, "clip": 2.0, "tab_order": "score", **view},
    }
    state_path(tmp_path).write_text(json.dumps(data))
    state, warning = load_state(tmp_path)
    assert warning is not None and "\n" not in warning and word in warning
    assert "boxnet-tui.json" in warning and "using the default" in warning
    assert state.curated == {"mic2"} and state.set_thresholds == {"BoxNet": 0.4}  # kept
    default = CurationState()
    assert state.display.lowpass == (default.display.lowpass if word == "lowpass" else 40.0)
    assert state.display.clip == (default.display.clip if word == "clip" else 2.0)
    assert state.tab_by_score is (word != "tab_order")


@pytest.mark.parametrize(
    "data",
    [
        {"set_thresholds": {"BoxNet": float("nan"), "manual": 0.2}},
        {"set_thresholds": {"BoxNet": -1, "manual": 0.2}},
        {"set_thresholds": {"BoxNet": "high", "manual": 0.2}},
        {"fallback_threshold": 3, "set_thresholds": {"manual": 0.2}},
    ],
)
def test_a_bad_threshold_is_dropped_with_one_line(tmp_path, data):
    state_path(tmp_path).write_text(json.dumps(data))
    state, warning = load_state(tmp_path)
    assert warning is not None and "\n" not in warning and "threshold" in warning
    assert pick_set_threshold(state, "manual") == 0.2
    assert pick_set_threshold(state, "BoxNet") == 0.0


@pytest.mark.parametrize("text", ['{"view": [1]}', '{"set_thresholds": "0.5"}'])
def test_a_state_of_the_wrong_shape_starts_afresh_with_one_line(tmp_path, text):
    state_path(tmp_path).write_text(text)
    state, warning = load_state(tmp_path)
    assert state == CurationState()
    assert warning is not None and "\n" not in warning and "unreadable" in warning

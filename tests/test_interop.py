"""Other pickers' files: EMAN .box, Topaz tables, crYOLO .cbox, RELION STAR; bad input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import starfile
from hypothesis import given, settings
from hypothesis import strategies as st

from boxnet_tui.errors import StarError, UserError
from boxnet_tui.io.interop import (
    CBOX_COLUMNS,
    export_picks,
    format_of,
    import_picks,
    read_box,
    read_cbox,
    read_topaz,
    write_box,
    write_cbox,
    write_topaz,
)
from boxnet_tui.io.star import Picks, read_picks, write_picks
from tests.conftest import snapshot

PICKS = Picks([100.25, 512.75, 40.0], [300.5, 20.0, 1000.0], [0.91, 0.5, -1.25])


# ----------------------------------------------------------------------------- EMAN .box


def test_box_round_trip_and_corner_convention(tmp_path):
    path = tmp_path / "mic1.box"
    write_box(path, PICKS, 64)
    lines = path.read_text().splitlines()
    assert lines[0] == "68\t268\t64\t64"  # corner = centre - 32, whole pixels, tab separated
    assert len(lines) == 3
    back = read_box(path)
    np.testing.assert_allclose(back.x, PICKS.x, atol=0.5)
    np.testing.assert_allclose(back.y, PICKS.y, atol=0.5)
    assert not back.has_scores


def test_box_is_whole_pixels_that_topazs_reader_takes(tmp_path):
    """Topaz reads each .box field with int(): '298.815' made it fail (issue 13)."""
    files = pytest.importorskip("topaz.utils.files")
    path = tmp_path / "mic1.box"
    write_box(path, Picks([330.815, 40.2], [500.5, 61.7]), 63.6)  # an odd, fractional size
    for line in path.read_text().splitlines():
        assert all(field.lstrip("-").isdigit() for field in line.split("\t"))
    table = files.read_coordinates(str(path))  # Topaz's own reader: centre = corner + w // 2
    assert list(table["image_name"]) == ["mic1", "mic1"]
    np.testing.assert_allclose(table["x_coord"], [330.815, 40.2], atol=1.0)
    np.testing.assert_allclose(table["y_coord"], [500.5, 61.7], atol=1.0)


def test_box_reads_spaces_comments_and_a_fifth_column(tmp_path):
    path = tmp_path / "a.box"
    path.write_text("# made by hand\n10 20 50 60\n\n0\t0\t10\t10\t-3\n")
    picks = read_box(path)
    assert picks.x.tolist() == [35.0, 5.0] and picks.y.tolist() == [50.0, 5.0]
    empty = tmp_path / "empty.box"
    empty.write_text("")
    assert len(read_box(empty)) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10 20 50 60\n10 20 50\n", "line 2 has 3 fields"),
        ("10 twenty 50 60\n", "line 1: y 'twenty' is not a number"),
        ("10 20 nan 60\n", "line 1: width is nan"),
        ("10 20 0 60\n", "not positive"),
    ],
)
def test_box_bad_input_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.box"
    path.write_text(text)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match=message) as caught:
        read_box(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert snapshot(tmp_path) == before


def test_missing_and_binary_files(tmp_path):
    for reader in (read_box, read_topaz, read_cbox):
        with pytest.raises(UserError, match="no such file"):
            reader(tmp_path / "nope.x")
    binary = tmp_path / "b.box"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(UserError, match="not a text file"):
        read_box(binary)


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "mic1.box"
    write_box(path, PICKS, 64)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match="box size"):
        write_box(path, PICKS, 0)
    with pytest.raises(UserError, match="box size"):
        export_picks(path, PICKS, "box")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- Topaz


def test_topaz_round_trip_of_many_micrographs(tmp_path):
    path = tmp_path / "picks.txt"
    other = Picks([5.4, 6.6], [7.5, 8.49], [2.0, 3.0])
    write_topaz(path, {"mic1": PICKS, "folder/mic2.mrc": other})
    lines = path.read_text().splitlines()
    assert lines[0] == "image_name\tx_coord\ty_coord\tscore"
    assert lines[1] == "mic1\t100\t300\t0.91"  # integer centres, x = column
    assert lines[4] == "mic2\t5\t8\t2"
    back = read_topaz(path)
    assert list(back) == ["mic1", "mic2"]
    np.testing.assert_array_equal(back["mic1"].x, np.rint(PICKS.x))
    np.testing.assert_array_equal(back["mic1"].y, np.rint(PICKS.y))
    np.testing.assert_allclose(back["mic1"].score, PICKS.score)
    np.testing.assert_array_equal(back["mic2"].x, [5, 7])
    np.testing.assert_array_equal(back["mic2"].y, [8, 8])


def test_topaz_without_scores_is_the_training_target_format(tmp_path):
    path = tmp_path / "targets.tsv"
    write_topaz(path, {"a": Picks([1.0], [2.0]), "b": Picks()})
    assert path.read_text() == "image_name\tx_coord\ty_coord\na\t1\t2\n"
    back = read_topaz(path)
    assert list(back) == ["a"] and not back["a"].has_scores


def test_topaz_reads_any_column_order_and_extra_columns(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("score x_coord extra y_coord image_name\n0.5 10.5 z 20 m.mrc\n")
    back = read_topaz(path)
    assert back["m"].x.tolist() == [10.5] and back["m"].score.tolist() == [0.5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("image_name\tx_coord\tscore\n", "missing column y_coord"),
        ("image_name\tx_coord\ty_coord\nm\t1\n", "line 2 has 2 fields"),
        ("image_name\tx_coord\ty_coord\nm\t1\tabc\n", "line 2: y_coord 'abc' is not a number"),
        ("image_name\tx_coord\ty_coord\tscore\nm\t1\t2\thigh\n", "score 'high'"),
    ],
)
def test_topaz_bad_input(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    before = snapshot(tmp_path)
    with pytest.raises(UserError, match=message) as caught:
        read_topaz(path)
    assert str(path) in str(caught.value)
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- crYOLO CBOX


def test_cbox_round_trip_and_conventions(tmp_path):
    path = tmp_path / "mic1.cbox"
    write_cbox(path, PICKS, 64)
    blocks = starfile.read(path, always_dict=True)
    assert list(blocks) == ["global", "cryolo", "cryolo_include"]
    assert blocks["global"]["cbox_format_version"] == 1.0
    table = blocks["cryolo"]
    assert list(table.columns) == [c.lstrip("_") for c in CBOX_COLUMNS]
    np.testing.assert_allclose(table["CoordinateX"], PICKS.x - 32)  # lower-left corner
    np.testing.assert_allclose(table["CoordinateY"], PICKS.y - 32)
    assert (table["Width"] == 64).all() and (table["EstHeight"] == 64).all()
    assert table[["CoordinateZ", "Depth", "NumBoxes", "Angle"]].isna().all().all()
    assert "<NA>" in path.read_text()
    back = read_cbox(path)
    np.testing.assert_allclose(back.x, PICKS.x)
    np.testing.assert_allclose(back.y, PICKS.y)
    np.testing.assert_allclose(back.score, PICKS.score)


def test_cbox_unscored_picks_get_confidence_one(tmp_path):
    path = tmp_path / "m.cbox"
    write_cbox(path, Picks([50.0], [60.0]), 20)
    assert read_cbox(path).score.tolist() == [1.0]
    write_cbox(path, Picks(), 20)
    assert len(read_cbox(path)) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data_other\nloop_\n_CoordinateX\n_CoordinateY\n1 2\n", "no data_cryolo block"),
        ("data_cryolo\nloop_\n_CoordinateX\n_CoordinateY\n_Width\n1 2 3\n", "no _Height"),
        (
            "data_cryolo\nloop_\n_CoordinateX\n_CoordinateY\n_Width\n_Height\n1 b 3 3\n",
            "_CoordinateY holds text",
        ),
    ],
)
def test_cbox_bad_input(tmp_path, text, message):
    path = tmp_path / "bad.cbox"
    path.write_text(text)
    before = snapshot(tmp_path)
    with pytest.raises(StarError, match=message) as caught:
        read_cbox(path)
    assert str(path) in str(caught.value)
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- STAR / dispatch


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e7, 1e7, allow_nan=False),
            st.floats(-1e7, 1e7, allow_nan=False),
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_star_round_trip_property(rows):
    x, y, score = (np.array(column) for column in zip(*rows, strict=True))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mic_BoxNet.star"
        write_picks(path, Picks(x, y, score), "mic.mrc")
        back = read_picks(path)
    # STAR files carry 6 decimals: half a unit in the last place, plus float noise.
    np.testing.assert_allclose(back.x, x, rtol=1e-12, atol=5.1e-7)
    np.testing.assert_allclose(back.y, y, rtol=1e-12, atol=5.1e-7)
    np.testing.assert_allclose(back.score, score, rtol=1e-12, atol=5.1e-7)


def test_export_and_import_dispatch_by_extension_and_name(tmp_path):
    for name, size in (("m.box", 32), ("m.cbox", 32), ("m.star", None), ("m.tsv", None)):
        export_picks(tmp_path / name, PICKS, box_size=size, micrograph_name="m.mrc")
        back = import_picks(tmp_path / name)
        if name.endswith(".tsv"):
            back = back["m"]
        np.testing.assert_allclose(back.x, PICKS.x, atol=0.5)
    assert read_picks(tmp_path / "m.star").score.tolist() == PICKS.score.tolist()
    export_picks(tmp_path / "picks.dat", {"a": PICKS, "b": PICKS}, "topaz")
    assert list(import_picks(tmp_path / "picks.dat", "topaz")) == ["a", "b"]
    export_picks(tmp_path / "one.dat", {"mic9.mrc": PICKS}, "relion")
    assert len(import_picks(tmp_path / "one.dat", "star")) == 3
    assert format_of("x.BOX") == "box" and format_of("x", "cryolo") == "cbox"
    with pytest.raises(UserError, match="cannot tell the pick format"):
        import_picks(tmp_path / "picks.dat")
    with pytest.raises(UserError, match="unknown pick format"):
        export_picks(tmp_path / "x.box", PICKS, "xml")
    with pytest.raises(UserError, match="holds one micrograph"):
        export_picks(tmp_path / "x.box", {"a": PICKS, "b": PICKS}, box_size=10)
    with pytest.raises(StarError, match="no such file"):
        import_picks(tmp_path / "missing.star")

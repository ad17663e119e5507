"""The direct STAR writer: the bytes starfile.write wrote before, for every kind of table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import starfile

from boxnet_tui.io.atomic import atomic_path
from boxnet_tui.io.star import (
    Picks,
    picks_table,
    read_picks,
    read_star_document,
    star_text,
    write_picks,
    write_star_document,
)
from boxnet_tui.pick_log import read_record

HEADER = "# Created by the starfile Python package"


def body(text: str) -> list[str]:
    """The lines after the header line (which holds the time of writing)."""
    lines = text.split("\n")
    assert lines[0].startswith(HEADER)
    return lines[1:]


def same_as_starfile(content: dict) -> None:
    assert body(star_text(content)) == body(starfile.to_string(content))


def old_write_picks(path, picks: Picks, name: str, *, with_angles: bool = False) -> None:
    """The writer before: starfile.write of picks_table, atomically."""
    with atomic_path(path) as tmp:
        starfile.write(picks_table(picks, name, with_angles=with_angles), tmp, overwrite=True)


@pytest.mark.parametrize("count", [0, 1, 7, 629])
@pytest.mark.parametrize("with_angles", [False, True])
@pytest.mark.parametrize("scores", [False, True])
def test_write_picks_writes_the_old_writers_bytes(tmp_path, count, with_angles, scores):
    rng = np.random.default_rng(count)
    x, y = rng.uniform(0, 4096, count), rng.uniform(0, 4096, count)
    picks = Picks(x, y, rng.uniform(0, 1, count) if scores else None)
    new, old = tmp_path / "new.star", tmp_path / "old.star"
    write_picks(new, picks, "Falcon_2012_06_12-14_33_35_0.mrc", with_angles=with_angles)
    old_write_picks(old, picks, "Falcon_2012_06_12-14_33_35_0.mrc", with_angles=with_angles)
    assert body(new.read_text()) == body(old.read_text())
    pd.testing.assert_frame_equal(
        starfile.read(new, always_dict=True)[""], starfile.read(old, always_dict=True)[""]
    )
    back = read_picks(new)
    np.testing.assert_allclose(back.x, np.round(x, 6), atol=1e-6)
    assert len(back) == count


def test_the_record_line_is_the_first_line_as_the_batch_picker_wrote_it(tmp_path):
    picks = Picks([1.5, 2.25], [3.0, 4.0], [0.9, 0.4])
    record = "# boxnet-tui pick 0123456789abcdef model=BoxNetMask"
    new, old = tmp_path / "new.star", tmp_path / "old.star"
    write_picks(new, picks, "a.mrc", record=record)
    # what the batch picker wrote before: starfile's table with the record line put first
    starfile.write(picks_table(picks, "a.mrc"), old, overwrite=True)
    old.write_bytes(record.encode() + b"\n" + old.read_bytes())
    new_lines, old_lines = new.read_text().split("\n"), old.read_text().split("\n")
    assert new_lines[0] == old_lines[0] == record
    assert body("\n".join(new_lines[1:])) == body("\n".join(old_lines[1:]))
    assert read_record(new) == read_record(old)
    np.testing.assert_allclose(read_picks(new).x, [1.5, 2.25])


def test_edge_values_print_as_pandas_prints_them():
    table = pd.DataFrame(
        {
            "rlnCoordinateX": [np.nan, np.inf, -0.0, 1e20, 1.23456789e-7, -np.inf],
            "rlnCoordinateY": np.array([1.1, 2.5, 3, 4, 5, 6], dtype=np.float32),
            "rlnMicrographName": ["a b", "", 'x"y', "ok", "é", "µ-ß"],
            "rlnClassNumber": [1, 2, 3, -4, 5, 0],
            "rlnOpticsGroup": np.array([1, 1, 2, 2, 3, 3], dtype=np.uint8),
            "flag": [True, False, True, True, False, False],
            "text": pd.Series(["a", None, "c", "d", "e", "f"], dtype=object),
            "missing": pd.Series(["a", np.nan, "c", "d", "e", "f"]),
        }
    )
    same_as_starfile({"": table})
    same_as_starfile({"": table.iloc[:0]})  # a header without rows


def test_columns_it_is_not_sure_of_are_left_to_starfile():
    mixed = pd.DataFrame({"a": [1.5, "x", None, 2, True], "b": [1.0, 2.0, 3.0, 4.0, 5.0]})
    same_as_starfile({"": mixed})
    nullable = pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "c": ["a", "b"]})
    same_as_starfile({"": nullable})
    same_as_starfile({"": pd.DataFrame({"s": ["line\u2028break", "b"]})})
    with pytest.raises(Exception, match="escape"):  # starfile refuses a tab, so do we
        star_text({"": pd.DataFrame({"s": ["a\tb"]})})


def test_several_blocks_and_key_value_blocks():
    optics = {"rlnOpticsGroup": 1, "rlnImagePixelSize": 1.77, "rlnMicrographName": "a b.mrc"}
    loop = pd.DataFrame({"rlnCoordinateX": [1.0, 2.0], "rlnCoordinateY": [3.0, 4.0]})
    same_as_starfile({"optics": optics, "particles": loop, "": loop.iloc[:0]})


def test_an_edit_of_a_relion_file_writes_what_starfile_wrote(tmp_path):
    path = tmp_path / "particles.star"
    path.write_text(
        "data_optics\n\n_rlnOpticsGroup 1\n_rlnImagePixelSize 1.77\n\n"
        "data_particles\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnMicrographName\n"
        "_rlnClassNumber\n_rlnAutopickFigureOfMerit\n"
        "11.0 12.0 m.mrc 3 0.5\n13.5 14.5 m.mrc 1 0.25\n"
    )
    document = read_star_document(path)
    row = document.row_for({"rlnCoordinateX": 5.0, "rlnCoordinateY": 6.0}, "m.mrc")
    edited = document.inserted(1, row).deleted(0).moved(0, 7.5, 8.25)
    write_star_document(path, edited)
    assert body(path.read_text()) == body(starfile.to_string(edited.content()))
    again = read_star_document(path)
    assert list(again.blocks) == ["optics", "particles"]
    assert "optics" in again.simple
    np.testing.assert_allclose(again.picks().x, [7.5, 13.5])
    assert list(again.table["rlnClassNumber"]) == [0, 1]

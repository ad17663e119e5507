"""Micrograph reading: every common MRC mode, TIFF, headers, the folder scan, and bad input."""

from __future__ import annotations

import struct

import mrcfile
import numpy as np
import pytest
import tifffile

from boxnet_tui.errors import MicrographError, UserError
from boxnet_tui.folder import describe
from boxnet_tui.io.micrographs import (
    MAX_PIXELS,
    read_info,
    read_micrograph,
    scan_folder,
    write_micrograph,
)
from tests.conftest import snapshot
from tests.memory_limit import limited_memory


def _write_mrc(path, data, voxel_size=1.5):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel_size


@pytest.mark.parametrize(
    ("dtype", "mode"),
    [(np.int8, 0), (np.int16, 1), (np.float32, 2), (np.uint16, 6), (np.float16, 12)],
)
def test_reads_every_common_mrc_mode_as_float32(tmp_path, dtype, mode):
    data = (np.arange(48 * 64).reshape(48, 64) % 100).astype(dtype)
    path = tmp_path / "m.mrc"
    _write_mrc(path, data)
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.mode) == mode
    micrograph = read_micrograph(path)
    assert micrograph.data.dtype == np.float32
    assert micrograph.data.shape == (48, 64)
    np.testing.assert_array_equal(micrograph.data, data.astype(np.float32))
    assert micrograph.pixel_size == pytest.approx(1.5)


def test_single_section_volume_is_a_micrograph(tmp_path):
    path = tmp_path / "m.mrc"
    _write_mrc(path, np.ones((1, 32, 40), np.float32))
    assert read_micrograph(path).data.shape == (32, 40)
    assert read_info(path).shape == (32, 40)


def test_stack_is_refused_with_reason(tmp_path):
    path = tmp_path / "movie.mrcs"
    _write_mrc(path, np.ones((5, 32, 32), np.float32))
    with pytest.raises(MicrographError, match="a stack of 5 images"):
        read_micrograph(path)


def test_header_only_info_and_pixel_size_override(tmp_path):
    path = tmp_path / "m.mrc"
    _write_mrc(path, np.zeros((30, 50), np.float32), voxel_size=1.77)
    info = read_info(path)
    assert info.shape == (30, 50)
    assert info.pixel_size == pytest.approx(1.77)
    assert read_micrograph(path, pixel_size=2.5).pixel_size == 2.5


def test_missing_pixel_size_needs_one(tmp_path):
    path = tmp_path / "m.mrc"
    _write_mrc(path, np.zeros((16, 16), np.float32), voxel_size=0)
    assert read_info(path).pixel_size is None
    _write_mrc(path, np.zeros((16, 16), np.float32), voxel_size=1e-6)  # 0 once rounded
    assert read_info(path).pixel_size is None
    with pytest.raises(MicrographError, match="no pixel size in the header"):
        read_micrograph(path)
    assert read_micrograph(path, pixel_size=1.0).pixel_size == 1.0


def test_tiff_with_and_without_pixel_size(tmp_path):
    data = np.random.default_rng(0).normal(size=(40, 60)).astype(np.float32)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, data)
    assert read_info(plain).pixel_size is None
    # rows flipped, as Warp reads TIFFs
    np.testing.assert_array_equal(read_micrograph(plain, pixel_size=2.0).data, data[::-1])

    stated = tmp_path / "stated.tiff"
    tifffile.imwrite(
        stated, data, imagej=True, resolution=(1 / 0.15, 1 / 0.15), metadata={"unit": "nm"}
    )
    assert read_micrograph(stated).pixel_size == pytest.approx(1.5)

    compressed = tmp_path / "lzw.tif"
    tifffile.imwrite(compressed, (data * 10).astype(np.int16), compression="lzw")
    assert read_micrograph(compressed, pixel_size=1.0).data.shape == (40, 60)


def test_write_micrograph_round_trip_and_atomic(tmp_path):
    path = tmp_path / "w.mrc"
    data = np.random.default_rng(1).normal(size=(20, 24)).astype(np.float32)
    write_micrograph(path, data, 1.25)
    back = read_micrograph(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.pixel_size == pytest.approx(1.25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.mrc"]  # no temp file left


def _truncated_mrc(tmp_path):
    path = tmp_path / "cut.mrc"
    _write_mrc(path, np.ones((64, 64), np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _bad_files(tmp_path):
    rng = np.random.default_rng(2)
    cases = {}
    cases["truncated"] = (_truncated_mrc(tmp_path), "truncated")
    garbage = tmp_path / "garbage.mrc"
    garbage.write_bytes(rng.integers(0, 255, 3000, dtype=np.uint8).tobytes())
    cases["garbage"] = (garbage, "corrupt")
    empty = tmp_path / "empty.mrc"
    empty.write_bytes(b"")
    cases["empty"] = (empty, "empty file")
    nan = tmp_path / "nan.mrc"
    image = np.ones((16, 16), np.float32)
    image[3, 4] = np.nan
    image[5, 5] = np.inf
    _write_mrc(nan, image)
    cases["nan"] = (nan, "2 pixels are NaN or infinite")
    zero = tmp_path / "zero.tif"
    tifffile.imwrite(zero, np.zeros((0, 10), np.float32))
    cases["zero"] = (zero, "")
    bad_tiff = tmp_path / "bad.tif"
    tifffile.imwrite(bad_tiff, np.ones((64, 64), np.float32), compression="lzw")
    raw = bad_tiff.read_bytes()
    bad_tiff.write_bytes(raw[:100])
    cases["bad_tiff"] = (bad_tiff, "TIFF")
    return cases


@pytest.mark.parametrize("case", ["truncated", "garbage", "empty", "nan", "zero", "bad_tiff"])
def test_bad_micrograph_gives_one_line_and_changes_nothing(tmp_path, case):
    path, message = _bad_files(tmp_path)[case]
    before = snapshot(tmp_path)
    with pytest.raises(MicrographError) as caught:
        read_micrograph(path, pixel_size=1.0)
    text = str(caught.value)
    assert str(path) in text and message in text
    assert "\n" not in text
    assert snapshot(tmp_path) == before


def test_missing_and_unreadable(tmp_path, monkeypatch):
    with pytest.raises(MicrographError, match="no such file"):
        read_micrograph(tmp_path / "nope.mrc")
    path = tmp_path / "ok.mrc"
    _write_mrc(path, np.ones((8, 8), np.float32))
    monkeypatch.setattr("boxnet_tui.io.micrographs.os.access", lambda *_: False)
    with pytest.raises(MicrographError, match="permission denied"):
        read_micrograph(path)


def test_scan_folder_is_natural_ordered_and_ignores_other_files(tmp_path):
    for name in ["mic10.mrc", "mic2.mrc", "mic1.tif", "notes.txt", ".hidden.mrc", "a b é.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "matching").mkdir()
    names = [p.name for p in scan_folder(tmp_path)]
    assert names == ["a b é.tiff", "mic1.tif", "mic2.mrc", "mic10.mrc"]


def test_scan_folder_errors(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        scan_folder(tmp_path / "file")


def test_describe_reports_bad_files_and_carries_on(tmp_path):
    _write_mrc(tmp_path / "good one.mrc", np.ones((32, 32), np.float32))
    _truncated_mrc(tmp_path)
    entries = {entry.root: entry for entry in describe(tmp_path)}
    assert entries["good one"].error is None
    assert entries["good one"].info.shape == (32, 32)
    # the header is held against the file's size: a truncated file is caught from it alone
    assert "truncated MRC" in entries["cut"].error
    with pytest.raises(MicrographError):
        read_micrograph(entries["cut"].path)


def test_describe_empty_folder(tmp_path):
    with pytest.raises(UserError, match="no micrographs"):
        describe(tmp_path)


def test_reads_real_int8_micrograph(real_folder):
    path = sorted(real_folder.glob("*.mrc"))[0]
    micrograph = read_micrograph(path)
    assert micrograph.data.shape == (2048, 2048)
    assert micrograph.pixel_size == pytest.approx(3.54)
    assert micrograph.data.std() > 1


# --------------------------------------------------------------------------- damaged headers


def _patch(path, offset, fmt, *values):
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, *values)
    path.write_bytes(bytes(raw))


def _one_line(caught, path) -> str:
    text = str(caught.value)
    assert str(path) in text and "\n" not in text
    return text


@pytest.mark.parametrize("reader", [read_info, read_micrograph])
def test_mrc_extended_header_beyond_the_file_is_refused_without_allocating_it(tmp_path, reader):
    path = tmp_path / "m.mrc"
    _write_mrc(path, np.ones((1024, 1024), np.float32))  # 4 MB
    _patch(path, 92, "<i", 2**31 - 1)  # nsymbt: a 2 GB extended header
    with limited_memory(256 << 20), pytest.raises(MicrographError) as caught:
        reader(path, pixel_size=1.0) if reader is read_micrograph else reader(path)
    text = _one_line(caught, path)
    assert "truncated MRC" in text and "2147483647-byte extended header" in text


@pytest.mark.parametrize("reader", [read_info, read_micrograph])
def test_mrc_header_declaring_less_than_the_data_is_refused_not_scrambled(tmp_path, reader):
    path = tmp_path / "m.mrc"
    _write_mrc(path, np.random.default_rng(0).normal(size=(1024, 1024)).astype(np.float32))
    _patch(path, 0, "<ii", 512, 512)  # nx, ny: 512² declared over 1024² of data
    with pytest.raises(MicrographError) as caught:
        reader(path)
    text = _one_line(caught, path)
    assert "does not fit the file" in text and "512x512x1" in text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (0, -5, "negative MRC dimensions"),  # nx
        (12, 3, "mode 3 is not supported"),  # mode
        (92, -1, "negative extended header"),  # nsymbt
    ],
)
def test_mrc_header_values_beyond_sense_are_one_line(tmp_path, field, value, message):
    path = tmp_path / "m.mrc"
    _write_mrc(path, np.ones((16, 16), np.float32))
    _patch(path, field, "<i", value)
    with pytest.raises(MicrographError, match=message) as caught:
        read_info(path)
    _one_line(caught, path)


def test_valid_mrc_variants_still_read(tmp_path):
    big_endian = tmp_path / "be.mrc"
    data = np.arange(12 * 20, dtype=">f4").reshape(12, 20)
    _write_mrc(big_endian, data)
    np.testing.assert_array_equal(read_micrograph(big_endian).data, data.astype(np.float32))
    extended = tmp_path / "ext.mrc"
    with mrcfile.new(extended) as mrc:
        mrc.set_extended_header(np.zeros(3000, dtype="V1"))
        mrc.set_data(np.ones((8, 8), np.float32))
        mrc.voxel_size = 2.0
    assert read_micrograph(extended).data.shape == (8, 8)
    stamp = tmp_path / "stamp.mrc"  # a wrong machine stamp, as some writers leave it
    _write_mrc(stamp, np.ones((8, 8), np.int16))
    _patch(stamp, 212, "<4B", 0x11, 0x11, 0, 0)
    assert read_micrograph(stamp).data.shape == (8, 8)


def test_micrograph_beyond_any_detector_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.mrc"
    _write_mrc(path, np.zeros((4, 4), np.int8))
    _patch(path, 0, "<ii", 40000, 40000)  # 1.6 G pixels: 6.4 GB as float32
    with open(path, "r+b") as handle:
        handle.truncate(1024 + 40000 * 40000)  # sparse: the size fits the header
    assert MAX_PIXELS < 40000 * 40000
    for reader in (read_info, read_micrograph):
        with limited_memory(256 << 20), pytest.raises(MicrographError) as caught:
            reader(path)
        assert "40000x40000 pixels, more than any micrograph" in _one_line(caught, path)


def _tiff_tag(path, name):
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags[name]
        return tag.valueoffset, {3: "<H", 4: "<I"}[int(tag.dtype)]


@pytest.mark.parametrize("side", [20000, 60000])
def test_tiff_header_claiming_more_than_the_file_is_refused_before_allocating(tmp_path, side):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.float32), metadata=None)
    for name in ("ImageWidth", "ImageLength"):
        offset, fmt = _tiff_tag(path, name)
        _patch(path, offset, fmt, side)
    with limited_memory(256 << 20), pytest.raises(MicrographError) as caught:
        read_micrograph(path, pixel_size=1.0)
    text = _one_line(caught, path)
    assert "more than a file of" in text or "more than any micrograph" in text


@pytest.mark.parametrize(
    ("shape", "options", "message"),
    [
        ((64, 80, 3), {"photometric": "rgb"}, "a colour (RGB) image"),
        ((64, 80, 4), {"photometric": "rgb"}, "a colour (RGB) image"),
        ((3, 64, 80), {"photometric": "rgb", "planarconfig": "separate"}, "colour (RGB)"),
        ((64, 80, 2), {"photometric": "minisblack", "extrasamples": [1]}, "2 samples"),
        (
            (64, 80),
            {"photometric": "palette", "colormap": np.zeros((3, 256), np.uint16)},
            "palette",
        ),
    ],
)
def test_colour_tiff_is_refused_as_colour_not_as_a_stack(tmp_path, shape, options, message):
    path = tmp_path / "colour.tif"
    tifffile.imwrite(path, np.zeros(shape, np.uint8), **options)
    for reader in (read_info, read_micrograph):
        with pytest.raises(MicrographError) as caught:
            reader(path)
        text = _one_line(caught, path)
        assert message in text and "not a greyscale micrograph" in text
        assert "stack" not in text


def test_tiff_strip_beyond_the_end_of_the_file_is_refused_before_reading_it(tmp_path):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.float32), metadata=None)
    offset, fmt = _tiff_tag(path, "StripByteCounts")
    _patch(path, offset, fmt, 2**31 - 1)  # found by tests/test_fuzz_readers.py
    with limited_memory(256 << 20), pytest.raises(MicrographError) as caught:
        read_micrograph(path, pixel_size=1.0)
    assert "beyond the end of the file" in _one_line(caught, path)

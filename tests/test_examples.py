"""Warp's training-example TIFF: round trip, the on-disk format, lazy reading, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile

from boxnet_tui.errors import UserError
from boxnet_tui.io.examples import ExampleFile, examples_path, read_examples, write_examples
from boxnet_tui.training.labels import Example
from tests.conftest import snapshot

STACK = {"photometric": "minisblack", "compression": "lzw"}  # a stack of grey pages


def _example(shape: tuple[int, int], seed: int, name: str = "") -> Example:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=shape).astype(np.float32)
    label = rng.integers(0, 3, size=shape).astype(np.uint8)
    importance = rng.choice(np.array([0.0, 1.0, 4.0], np.float32), size=shape)
    return Example(image, label, importance, name)


@pytest.fixture
def two_examples() -> list[Example]:
    # different heights and widths, odd differences: padding is centred with the extra after
    return [_example((40, 31), 1, "a"), _example((33, 52), 2, "b")]


def _centre(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    top = (array.shape[0] - shape[0]) // 2
    left = (array.shape[1] - shape[1]) // 2
    return array[top : top + shape[0], left : left + shape[1]]


def test_round_trip_pads_centred_with_zero_importance(tmp_path, two_examples):
    path = tmp_path / "boxnet2training" / "Model.tif"
    write_examples(path, two_examples)
    back = read_examples(path)
    assert len(back) == 2
    for original, read in zip(two_examples, back, strict=True):
        assert read.image.shape == read.label.shape == read.importance.shape == (40, 52)
        assert read.image.dtype == np.float32 and read.importance.dtype == np.float32
        assert read.label.dtype == np.uint8
        shape = original.image.shape
        np.testing.assert_array_equal(_centre(read.image, shape), original.image)
        np.testing.assert_array_equal(_centre(read.label, shape), original.label)
        np.testing.assert_array_equal(_centre(read.importance, shape), original.importance)
        # everything outside the micrograph is zero: padded areas are not learnt
        inside = np.zeros(read.image.shape, bool)
        _centre(inside, shape)[...] = True
        for page in (read.image, read.label, read.importance):
            assert not page[~inside].any()
    first = back[1]
    # (40 - 33) // 2 = 3 rows before, 4 after; no columns padded
    np.testing.assert_array_equal(first.image[3:36], two_examples[1].image)
    assert back[0].name == "Model:0" and back[1].name == "Model:1"


def test_on_disk_format_is_warps(tmp_path, two_examples):
    path = tmp_path / "Model.tif"
    write_examples(path, two_examples)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 6  # 3 pages per micrograph
        for page in tif.pages:
            assert page.dtype == np.float32
            assert page.compression == tifffile.COMPRESSION.LZW
            assert page.shape == (40, 52)
        raw_image = tif.pages[0].asarray()
        raw_label = tif.pages[1].asarray()
        raw_importance = tif.pages[5].asarray()
    padded = np.zeros((40, 52), np.float32)
    padded[:, 10:41] = two_examples[0].image  # (52 - 31) // 2 = 10 columns before
    # rows are flipped on disk (Warp's origin is bottom-left)
    np.testing.assert_array_equal(raw_image, padded[::-1])
    assert not np.array_equal(raw_image, padded)
    assert set(np.unique(raw_label)) <= {0.0, 1.0, 2.0}
    np.testing.assert_array_equal(raw_importance[4:37][::-1], two_examples[1].importance)


def test_reads_a_file_written_the_way_warp_does(tmp_path):
    # one stack written in a single call by another writer, labels slightly off integers
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    label = np.array([[0, 1, 2, 0]] * 3, np.float32) + 0.01
    importance = np.ones((3, 4), np.float32)
    path = tmp_path / "warp.tif"
    tifffile.imwrite(path, np.stack([image, label, importance])[:, ::-1], **STACK)
    (example,) = read_examples(path)
    np.testing.assert_array_equal(example.image, image)
    np.testing.assert_array_equal(example.label, np.array([[0, 1, 2, 0]] * 3, np.uint8))


def test_example_file_reads_one_triple_at_a_time(tmp_path, monkeypatch):
    examples = [_example((20 + i, 24), i) for i in range(4)]
    path = tmp_path / "many.tif"
    write_examples(path, examples)
    with ExampleFile(path) as lazy:
        assert len(lazy) == 4 and lazy.shape == (23, 24)
        decoded: list[int] = []
        original = tifffile.TiffPage.asarray

        def counting(self, *args, **kwargs):
            decoded.append(self.index)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(tifffile.TiffPage, "asarray", counting)
        third = lazy[2]
        assert decoded == [6, 7, 8]
        np.testing.assert_array_equal(_centre(third.image, (22, 24)), examples[2].image)
        np.testing.assert_array_equal(lazy[-1].label[0], examples[3].label[0])
        with pytest.raises(IndexError):
            lazy[4]
        # picklable for DataLoader workers; the copy opens its own handle
        copy = pickle.loads(pickle.dumps(lazy))
        np.testing.assert_array_equal(copy[0].importance, lazy[0].importance)
        copy.close()


def test_examples_path_is_warps_folder(tmp_path):
    assert examples_path(tmp_path, "M") == tmp_path / "boxnet2training" / "M.tif"


def _bad(path, message):
    with pytest.raises(UserError, match=message) as caught:
        read_examples(path)
    text = str(caught.value)
    assert str(path) in text and "\n" not in text


def test_missing_empty_and_not_a_tiff(tmp_path):
    _bad(tmp_path / "none.tif", "no such")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    _bad(empty, "empty file")
    text = tmp_path / "text.tif"
    text.write_text("not an image at all")
    _bad(text, "not a TIFF")


def test_page_count_not_multiple_of_three(tmp_path):
    path = tmp_path / "four.tif"
    tifffile.imwrite(path, np.zeros((4, 8, 8), np.float32), **STACK)
    _bad(path, "4 pages, not a multiple of 3")


def test_pages_of_unequal_shape_within_a_triple(tmp_path):
    path = tmp_path / "ragged.tif"
    with tifffile.TiffWriter(path) as tif:
        for shape in ((8, 8), (8, 8), (8, 9)):
            tif.write(np.zeros(shape, np.float32), metadata=None)
    _bad(path, "unequal")


def test_truncated_and_corrupt(tmp_path, two_examples):
    good = tmp_path / "good.tif"
    write_examples(good, two_examples)
    data = good.read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 100, 8):
        path = tmp_path / f"cut{cut}.tif"
        path.write_bytes(data[:cut])
        _bad(path, "truncated|corrupt|not a TIFF")
    garbled = bytearray(data)
    garbled[300:500] = np.random.default_rng(0).integers(0, 255, 200, np.uint8).tobytes()
    path = tmp_path / "garbled.tif"
    path.write_bytes(bytes(garbled))
    _bad(path, "corrupt")


def test_labels_out_of_range_and_nan(tmp_path):
    path = tmp_path / "bad_label.tif"
    pages = np.zeros((3, 4, 4), np.float32)
    pages[1, 0, 0] = 7
    tifffile.imwrite(path, pages, **STACK)
    _bad(path, "labels from 0 to 7")
    pages[1, 0, 0] = 0
    pages[0, 1, 1] = np.nan
    tifffile.imwrite(path, pages, **STACK)
    _bad(path, "NaN")


def test_bad_examples_write_nothing(tmp_path, two_examples):
    path = tmp_path / "out" / "Model.tif"
    write_examples(path, two_examples)
    before = snapshot(tmp_path)
    broken = Example(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.uint8), np.ones((4, 4)))
    with pytest.raises(UserError, match="one 2-D shape"):
        write_examples(path, [two_examples[0], broken])
    with pytest.raises(UserError, match="no training examples"):
        write_examples(path, [])
    assert snapshot(tmp_path) == before
    with pytest.raises(UserError):
        write_examples(tmp_path / "new.tif", [])
    assert not (tmp_path / "new.tif").exists()


def test_written_without_replace_an_existing_file_is_kept(tmp_path, two_examples):
    path = tmp_path / "boxnet2training" / "Net.tif"
    write_examples(path, two_examples, replace=False)
    assert len(read_examples(path)) == 2
    path.write_bytes(b"another export of the same name")
    with pytest.raises(FileExistsError):
        write_examples(path, two_examples[:1], replace=False)
    assert path.read_bytes() == b"another export of the same name"
    assert sorted(p.name for p in path.parent.iterdir()) == ["Net.tif"]  # no temporary left


def test_without_hard_links_the_file_is_still_written_and_never_over_another(
    tmp_path, two_examples, monkeypatch
):
    """FAT, exFAT and some network mounts refuse hard links (EPERM, EOPNOTSUPP)."""
    import errno
    import os

    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "boxnet2training" / "Net.tif"
    write_examples(path, two_examples, replace=False)
    assert len(read_examples(path)) == 2
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_examples(path, two_examples[:1], replace=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["Net.tif"]


def test_a_public_set_skips_hidden_files(tmp_path, two_examples):
    from boxnet_tui.training.run_config import public_set_files

    write_examples(tmp_path / "a.tif", two_examples)
    (tmp_path / ".a.x1.tmp.tif").write_bytes(b"a write's temporary file, left by a kill")
    assert [p.name for p in public_set_files(tmp_path)] == ["a.tif"]

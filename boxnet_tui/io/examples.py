"""Warp's BoxNet training-example TIFF (``boxnet2training/<ModelName>.tif``), read and written.

The format Warp 1 and Warp 2 read and write, so that our examples and Warp's public corpus
interchange:

- one multipage TIFF, every page float32, LZW compressed;
- 3 pages per micrograph, in this order: the image at 8 Å/px (normalised, mean 0 / std 1),
  the label (0 background, 1 particle, 2 junk) stored as float32, the importance (float32);
- every page zero-padded, centred, to the largest width and height among the micrographs of
  the file (``before = (largest - size) // 2``, the rest after). The padding is 0 on all three
  pages, so in the importance page it is 0 too: padded areas are never learnt;
- the rows of every page flipped in Y on write (Warp's image origin is bottom-left) and
  flipped back on read, so that arrays in memory have row 0 at the top, as everywhere else;
- the pixel size (8 Å/px by convention) and the micrograph's original size are not stored:
  an example read back keeps its padding (with importance 0 there) and has no name of its
  own; it is called ``<file stem>:<index>``.

Reading is lazy: :class:`ExampleFile` reads only the three pages of the micrograph asked for,
so a public set of thousands of micrographs need not be in memory at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tifffile

from boxnet_tui.errors import UserError
from boxnet_tui.io.atomic import atomic_path
from boxnet_tui.io.layout import training_dir
from boxnet_tui.training.labels import Example

PAGES_PER_EXAMPLE = 3
_LABEL_MAX = 2


def examples_path(folder: str | os.PathLike[str], model_name: str) -> Path:
    """Where Warp keeps a model's examples: ``<folder>/boxnet2training/<model_name>.tif``
    (Warp 1, flat folders), ``<processing folder>/boxnet3training/<model_name>.tif`` (Warp 2)."""
    return training_dir(folder) / f"{model_name}.tif"


def write_examples(
    path: str | os.PathLike[str], examples: Sequence[Example], *, replace: bool = True
) -> None:
    """Write ``examples`` as one Warp training-example TIFF, atomically (``replace`` False:
    never over an existing file, FileExistsError instead).

    Pages are padded (centred, with zeros: importance 0 outside each micrograph) to the largest
    height and width, flipped in Y, and written one at a time (memory: one page).

    Raises:
        UserError: no examples, or an example whose three arrays are not 2-D of one shape.
            Nothing is written then.
    """
    path = Path(path)
    if not examples:
        raise UserError(f"{path}: no training examples to write")
    for index, example in enumerate(examples):
        shapes = {np.shape(example.image), np.shape(example.label), np.shape(example.importance)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise UserError(
                f"{path}: example {index} ({example.name or 'unnamed'}) has image, label and "
                f"importance of shapes {sorted(shapes)}; they must be one 2-D shape"
            )
    height = max(int(np.shape(e.image)[0]) for e in examples)
    width = max(int(np.shape(e.image)[1]) for e in examples)

    def pages() -> Iterator[np.ndarray]:
        for example in examples:
            for array in (example.image, example.label, example.importance):
                yield _pad_centred(np.asarray(array, np.float32), height, width)[::-1]

    with atomic_path(path, replace=replace) as tmp, tifffile.TiffWriter(tmp) as tif:
        tif.write(
            pages(),
            shape=(len(examples) * PAGES_PER_EXAMPLE, height, width),
            dtype=np.float32,
            compression="lzw",
            photometric="minisblack",
            metadata=None,  # plain pages, as Warp writes them: no tifffile JSON description
        )


def _pad_centred(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` in the middle of a zero ``height`` x ``width`` page (extra pixel after)."""
    if array.shape == (height, width):
        return np.ascontiguousarray(array)
    out = np.zeros((height, width), np.float32)
    top = (height - array.shape[0]) // 2
    left = (width - array.shape[1]) // 2
    out[top : top + array.shape[0], left : left + array.shape[1]] = array
    return out


class ExampleFile:
    """A training-example TIFF, opened once and read one micrograph at a time.

    ``len(f)`` is the number of micrographs; ``f[i]`` reads the three pages of micrograph ``i``
    only. The page directory is checked when the file is opened (a TIFF, a multiple of 3 pages,
    2-D single-channel pages, no page whose data runs past the end of the file); the pixels of
    a micrograph are checked when read (finite, labels 0-2). Usable as a context manager;
    safe to share between threads, and between processes forked after opening (each process
    reopens the file for itself).

    Raises:
        UserError: one line naming the file and the problem.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._tif: tifffile.TiffFile | None = None
        self._pid = -1
        self.shape: tuple[int, int] = (0, 0)
        self._count = self._check()

    # --- opening and checking -------------------------------------------------------------
    def _open(self) -> tifffile.TiffFile:
        if self._tif is not None and self._pid == os.getpid():
            return self._tif
        # after a fork the file offset would be shared with the parent: open our own handle
        self._tif = None
        path = self.path
        if not path.exists():
            raise UserError(f"{path}: no such training-example file")
        if not path.is_file():
            raise UserError(f"{path}: not a file")
        if not os.access(path, os.R_OK):
            raise UserError(f"{path}: permission denied")
        if path.stat().st_size == 0:
            raise UserError(f"{path}: empty file (0 bytes), not a training-example TIFF")
        try:
            with _TiffWarnings() as problems:
                tif = tifffile.TiffFile(path)
        except Exception as error:
            raise UserError(
                f"{path}: not a TIFF file ({type(error).__name__}: {_one_line(error)})"
            ) from None
        if problems.messages:
            tif.close()
            raise UserError(f"{path}: corrupt or truncated TIFF ({problems.messages[0]})")
        self._tif, self._pid = tif, os.getpid()
        return tif

    def _check(self) -> int:
        tif = self._open()
        path = self.path
        size = path.stat().st_size
        problems = _TiffWarnings()
        try:
            with problems:
                pages = tif.pages
                pages.useframes = False
                count = len(pages)
                shapes = []
                for index in range(count):
                    page = pages[index]
                    shapes.append(tuple(page.shape))
                    if page.samplesperpixel != 1 or len(page.shape) != 2:
                        raise UserError(
                            f"{path}: page {index} is shaped {tuple(page.shape)}, "
                            "not one 2-D single-channel image"
                        )
                    offsets, counts = page.dataoffsets, page.databytecounts
                    ends = [o + n for o, n in zip(offsets, counts, strict=True)]
                    if not ends or max(ends) > size or 0 in counts:
                        raise UserError(
                            f"{path}: truncated or corrupt (the data of page {index} is missing)"
                        )
        except UserError:
            self.close()
            raise
        except Exception as error:
            self.close()
            raise UserError(
                f"{path}: corrupt or truncated TIFF ({type(error).__name__}: {_one_line(error)})"
            ) from None
        if problems.messages:
            self.close()
            raise UserError(f"{path}: corrupt or truncated TIFF ({problems.messages[0]})")
        if count == 0 or count % PAGES_PER_EXAMPLE:
            self.close()
            raise UserError(
                f"{path}: {count} pages, not a multiple of 3 (image, label, importance per "
                "micrograph): not a BoxNet training-example file"
            )
        for start in range(0, count, PAGES_PER_EXAMPLE):
            triple = shapes[start : start + PAGES_PER_EXAMPLE]
            if len(set(triple)) != 1:
                self.close()
                raise UserError(
                    f"{path}: micrograph {start // PAGES_PER_EXAMPLE} has pages of unequal "
                    f"shapes {triple} (image, label and importance must match)"
                )
        self.shape = (max(s[0] for s in shapes), max(s[1] for s in shapes))
        return count // PAGES_PER_EXAMPLE

    # --- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> Example:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"example index must be an integer, not {type(index).__name__}")
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(f"{self.path}: example {index} of {self._count}")
        index = int(index)
        with self._lock:
            tif = self._open()
            arrays = []
            for k in range(PAGES_PER_EXAMPLE):
                page_index = index * PAGES_PER_EXAMPLE + k
                try:
                    with _TiffWarnings() as problems:
                        data = tif.pages[page_index].asarray()
                except Exception as error:
                    raise UserError(
                        f"{self.path}: page {page_index} cannot be decoded, the file is corrupt "
                        f"or truncated ({type(error).__name__}: {_one_line(error)})"
                    ) from None
                if problems.messages:
                    raise UserError(
                        f"{self.path}: page {page_index} is corrupt or truncated "
                        f"({problems.messages[0]})"
                    )
                # back from Warp's bottom-left origin to row 0 at the top
                arrays.append(np.ascontiguousarray(np.asarray(data, np.float32)[::-1]))
        image, label, importance = arrays
        for what, array in (("image", image), ("label", label), ("importance", importance)):
            if not np.isfinite(array).all():
                raise UserError(
                    f"{self.path}: micrograph {index} has NaN or infinite values in its {what}"
                )
        rounded = np.rint(label)
        if rounded.min() < 0 or rounded.max() > _LABEL_MAX:
            raise UserError(
                f"{self.path}: micrograph {index} has labels from {rounded.min():g} to "
                f"{rounded.max():g}; they must be 0 (background), 1 (particle) or 2 (junk)"
            )
        return Example(image, rounded.astype(np.uint8), importance, f"{self.path.stem}:{index}")

    def __iter__(self) -> Iterator[Example]:
        for index in range(self._count):
            yield self[index]

    # --- closing --------------------------------------------------------------------------
    def close(self) -> None:
        if self._tif is not None and self._pid == os.getpid():
            self._tif.close()
        self._tif = None

    def __enter__(self) -> ExampleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, object]:
        # picklable (spawned DataLoader workers): the open handle and the lock stay behind
        state = self.__dict__.copy()
        state["_tif"], state["_lock"], state["_pid"] = None, None, -1
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExampleFile({str(self.path)!r}, {self._count} micrographs)"


def read_examples(path: str | os.PathLike[str]) -> list[Example]:
    """Every micrograph of a training-example TIFF, in memory (see :class:`ExampleFile`).

    The padding stays (the original size is not stored), with importance 0 there.

    Raises:
        UserError: one line naming the file and the problem.
    """
    with ExampleFile(path) as examples:
        return [examples[i] for i in range(len(examples))]


class _TiffWarnings(logging.Handler):
    """Collect what tifffile logs while reading (it logs, not raises, on a broken IFD chain)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("tifffile")

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(_one_line(record.getMessage()))

    def __enter__(self) -> _TiffWarnings:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)


def _one_line(error: object) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 200 else text[:197] + "..."

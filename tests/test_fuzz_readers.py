"""Fuzzing the readers of untrusted files: any bytes give a result or one line, never more.

Every reader of a file a user (or a data folder, or a planted file) can hand the program: MRC
and TIFF micrographs, STAR picks, a model's ``model.json``, a run's ``status.json`` and
``metrics.jsonl``. Each is given random bytes, random mutations of valid files (bits flipped,
runs overwritten, header fields set to edge values, cuts, splices) and, for JSON, valid JSON of
the wrong shapes. It must return a usable result or raise :class:`UserError` with one line
naming the file; any other exception is a bug. Each call runs under a memory cap
(:mod:`tests.memory_limit`), so a header that claims gigabytes must be refused before they are
allocated: an allocation beyond the cap fails, and its error is a failure here too.

The default run is a short, deterministic sample; ``pytest -m slow`` runs a long random one.
"""

from __future__ import annotations

import functools
import json
import math
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxnet_tui.errors import UserError
from boxnet_tui.io.micrographs import Micrograph, MicrographInfo, read_info, read_micrograph
from boxnet_tui.io.star import Picks, read_micrograph_names, read_picks, write_picks
from boxnet_tui.model.store import ModelInfo, find_model, shipped_models_dir
from boxnet_tui.training.runs import STATES, Run, RunStatus
from tests.memory_limit import MiB, limited_memory

COMMON = {
    "deadline": None,
    "database": None,  # nothing written into the working tree
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
FAST = settings(max_examples=50, derandomize=True, **COMMON)
SLOW = settings(max_examples=1500, **COMMON)
MEMORY_CAP = 512 * MiB


# --------------------------------------------------------------------------- valid seeds


def _bytes_of(write: Callable[[Path], None], suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"seed{suffix}"
        write(path)
        return path.read_bytes()


def _mrc(data: np.ndarray, extended: int = 0) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with mrcfile.new(path) as mrc:
            if extended:
                mrc.set_extended_header(np.zeros(extended, dtype="V1"))
            mrc.set_data(data)
            mrc.voxel_size = 1.5

    return write


def _tiff(data: np.ndarray, **options: Any) -> Callable[[Path], None]:
    return lambda path: tifffile.imwrite(path, data, **options)


@functools.cache
def seeds() -> dict[str, list[bytes]]:
    """Valid files of each kind, small enough to mutate quickly."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(24, 32)).astype(np.float32)
    status = RunStatus(state="running", pid=4242, iteration=40, iterations=100)
    status.started = status.updated = "2024-01-01T00:00:00+00:00"
    step = {"iteration": 20, "loss_new": 0.5, "loss_old": None, "lr": 1e-3, "time": 2.0}
    heldout = {"heldout": {"micrograph": "m", "new": {"f1": 0.9}, "base": {"f1": 0.5}}}
    shipped = shipped_models_dir() / "BoxNet" / "model.json"

    def star(path: Path) -> None:
        write_picks(path, Picks([1.5, 20.0], [3.0, 4.5], [0.9, 0.7]), "m.mrc")

    return {
        "mrc": [
            _bytes_of(_mrc(image), ".mrc"),
            _bytes_of(_mrc((image * 10).astype(np.int8), extended=96), ".mrc"),
            _bytes_of(_mrc(image.astype(np.float16)), ".mrc"),
        ],
        "tif": [
            _bytes_of(_tiff(image, metadata=None), ".tif"),
            _bytes_of(_tiff((image * 100).astype(np.int16), compression="lzw"), ".tif"),
            _bytes_of(
                _tiff(image, compression="zlib", resolution=(1e8, 1e8, "CENTIMETER")), ".tif"
            ),
            _bytes_of(_tiff(np.zeros((8, 10, 3), np.uint8), photometric="rgb"), ".tif"),
        ],
        "star": [_bytes_of(star, ".star")],
        "model": [shipped.read_bytes()],
        "status": [json.dumps(status.to_json(), indent=1).encode()],
        "metrics": [(json.dumps(step) + "\n" + json.dumps(heldout) + "\n").encode()],
    }


# --------------------------------------------------------------------------- mutations

EDGE_INTS = [0, 1, -1, 2, 3, 4, 255, 256, 512, 1024, 4096, 65535, 2**16, 2**24, 2**31 - 1, -(2**31)]


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A valid file of ``kind`` with a few random damages."""
    data = bytearray(draw(st.sampled_from(seeds()[kind])))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        damage = draw(st.sampled_from(["flip", "edge", "header", "overwrite", "cut", "splice"]))
        if damage == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif damage == "edge":  # a length, offset or count set to an edge value
            size, fmt = draw(st.sampled_from([(4, "<i"), (4, ">i"), (2, "<H"), (2, ">H")]))
            value = draw(st.sampled_from(EDGE_INTS))
            if fmt.endswith("H"):
                value &= 0xFFFF
            at = min(at, max(len(data) - size, 0))
            data[at : at + size] = struct.pack(fmt, value)[: len(data) - at]
        elif damage == "header":  # an aligned field of the first 1024 bytes (MRC, TIFF IFD)
            word = draw(st.integers(0, min(255, len(data) // 4 - 1))) if len(data) >= 4 else 0
            data[4 * word : 4 * word + 4] = struct.pack("<i", draw(st.sampled_from(EDGE_INTS)))
        elif damage == "overwrite":
            data[at : at + 8] = draw(st.binary(min_size=1, max_size=8))
        elif damage == "cut":
            del data[draw(st.integers(0, len(data))) :]
        else:
            data[at:at] = draw(st.binary(max_size=64))
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def reshaped_json(draw: st.DrawFn, kind: str) -> bytes:
    """A valid JSON file of ``kind`` (each line of it) with keys set to values of any shape."""
    text = seeds()[kind][0].decode()
    lines = []
    for piece in text.splitlines() if kind == "metrics" else [text]:
        record = json.loads(piece)
        keys = [*record, "name", "architecture", "iteration", "heldout", "widths"]
        for _ in range(draw(st.integers(1, 3))):
            record[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        if draw(st.booleans()) and isinstance(record.get("architecture"), dict):
            record["architecture"]["widths"] = draw(JSON_VALUES)
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def _deep(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}\n"


EXTREME_JSON = st.sampled_from(
    [b'{"iteration": 1' + b"0" * 400 + b"}\n", b'{"pixel_size": 1e999, "threshold": NaN}\n']
) | st.integers(10, 100_000).map(_deep)


def inputs(kind: str) -> st.SearchStrategy[bytes]:
    strategies = [st.binary(max_size=2048), mutated(kind)]
    if kind in ("model", "status", "metrics"):
        strategies += [reshaped_json(kind), EXTREME_JSON]
    if kind == "star":
        tokens = ["data_", "data_x", "loop_", "_rlnCoordinateX", "_rlnCoordinateY", "\n", " ", '"']
        words = st.sampled_from(tokens) | st.text(max_size=6) | st.floats().map(str)
        strategies.append(st.lists(words, max_size=40).map(lambda w: "".join(w).encode()))
    return st.one_of(strategies)


# --------------------------------------------------------------------------- the contract


def outcome(call: Callable[[], Any], path: Path) -> Any:
    """``call()``'s result, or None after a one-line UserError naming ``path``."""
    result, _ = outcome_and_message(call, path)
    return result


def outcome_and_message(call: Callable[[], Any], path: Path) -> tuple[Any, str | None]:
    """``(call(), None)``, or ``(None, message)`` after a one-line UserError naming ``path``."""
    try:
        with limited_memory(MEMORY_CAP):
            result = call()
    except UserError as error:
        text = str(error)
        assert text and "\n" not in text and "\r" not in text, repr(text)
        assert str(path) in text, text
        # a reader that tried to allocate beyond the cap, even if it then said so in one line,
        # did not refuse the header's claim in time
        chain, cause = [], error.__context__
        while cause is not None and len(chain) < 10:
            chain.append(cause)
            cause = cause.__context__
        assert not any(isinstance(cause, MemoryError) for cause in chain), text
        assert "memory" not in text.lower() and "allocate" not in text.lower(), text
        return None, text
    return result, None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_micrograph(path: Path) -> None:
    info = outcome(lambda: read_info(path), path)
    if info is not None:
        assert isinstance(info, MicrographInfo)
        assert all(isinstance(side, int) and side > 0 for side in info.shape)
        assert info.pixel_size is None or (math.isfinite(info.pixel_size) and info.pixel_size > 0)
    micrograph = outcome(lambda: read_micrograph(path, pixel_size=1.0), path)
    if micrograph is not None:
        assert isinstance(micrograph, Micrograph)
        assert micrograph.data.dtype == np.float32 and micrograph.data.ndim == 2
        assert np.isfinite(micrograph.data).all()


def check_star(path: Path) -> None:
    picks, message = outcome_and_message(lambda: read_picks(path), path)
    if message is not None and "empty" in message:
        assert path.stat().st_size == 0, message  # binary or UTF-16 is not "empty"
    if picks is not None:
        assert isinstance(picks, Picks)
        assert np.isfinite(picks.x).all() and np.isfinite(picks.y).all()
    names = outcome(lambda: read_micrograph_names(path), path)
    assert names is None or all(isinstance(name, str) for name in names)


def check_model(path: Path) -> None:
    info = outcome(lambda: find_model(path.parent), path.parent)
    if info is not None:
        assert isinstance(info, ModelInfo) and isinstance(info.name, str)
        assert all(isinstance(w, int) and w > 0 for w in info.architecture.widths)
        assert math.isfinite(info.pixel_size) and info.pixel_size > 0
        assert info.threshold is None or 0 <= info.threshold <= 1
        assert isinstance(info.parent, str | None) and isinstance(info.training, dict)
        assert isinstance(info.date, str) and isinstance(info.has_mask, bool)


def check_run(path: Path) -> None:
    run = Run(path.parent)
    status = outcome(run.status, path)
    assert isinstance(status, RunStatus)  # a status.json never fails: defaults where damaged
    assert status.state in STATES and isinstance(status.iteration, int)
    assert status.iterations is None or isinstance(status.iterations, int)
    assert status.pid is None or (isinstance(status.pid, int) and status.pid > 0)
    assert all(isinstance(getattr(status, key), str | None) for key in ("error", "started"))
    assert status.fraction >= 0 or status.iterations == 0
    for step in outcome(run.losses, path):
        assert isinstance(step["iteration"], int)
        for key in ("loss_new", "loss_old", "lr", "time"):
            assert step[key] is None or _is_number(step[key])
    heldout = outcome(run.heldout, path)
    assert heldout is None or isinstance(heldout, dict)


CHECKS = {
    "mrc": ("m.mrc", check_micrograph),
    "tif": ("m.tif", check_micrograph),
    "star": ("m_manual.star", check_star),
    "model": ("Fuzzed/model.json", check_model),
    "status": ("FuzzRun/status.json", check_run),
    "metrics": ("FuzzRun/metrics.jsonl", check_run),
}


def fuzz_one(kind: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        CHECKS[kind][1](_written(folder, kind, data))


def _written(folder: str, kind: str, data: bytes) -> Path:
    path = Path(folder) / CHECKS[kind][0]
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_every_seed_is_read(tmp_path):
    """The valid files the mutations start from read as they should."""
    seed = seeds()
    for index, data in enumerate(seed["mrc"] + seed["tif"][:-1]):
        path = tmp_path / f"{index}.{'mrc' if index < len(seed['mrc']) else 'tif'}"
        path.write_bytes(data)
        assert read_micrograph(path, pixel_size=1.0).data.shape == (24, 32)
    with pytest.raises(UserError, match="colour"):
        read_info(_written(str(tmp_path), "tif", seed["tif"][-1]))
    assert len(read_picks(_written(str(tmp_path), "star", seed["star"][0]))) == 2
    assert find_model(_written(str(tmp_path), "model", seed["model"][0]).parent).name == "BoxNet"
    _written(str(tmp_path), "status", seed["status"][0])
    run = Run(_written(str(tmp_path), "metrics", seed["metrics"][0]).parent)
    assert run.raw_status().iteration == 40 and run.raw_status().iterations == 100
    assert len(run.losses()) == 1 and run.heldout()["micrograph"] == "m"


@pytest.mark.parametrize("kind", list(CHECKS))
@FAST
@given(data=st.data())
def test_a_reader_gives_a_result_or_one_line(kind, data):
    fuzz_one(kind, data.draw(inputs(kind), label="file"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CHECKS))
@SLOW
@given(data=st.data())
def test_a_reader_gives_a_result_or_one_line_long(kind, data):
    fuzz_one(kind, data.draw(inputs(kind), label="file"))


# --------------------------------------------------------------------------- named cases


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (lambda text: text.encode("utf-16"), "UTF-16 text, not UTF-8"),
        (lambda text: text.encode("utf-16-le"), "UTF-16 text, not UTF-8"),  # no byte-order mark
        (lambda text: text.encode("utf-32"), "UTF-32 text, not UTF-8"),
        (lambda text: text.replace("m.mrc", "mé.mrc").encode("latin-1"), "not UTF-8 text"),
        (lambda text: text.encode() + b"\0\x01\x02", "a binary file"),
        (lambda text: bytes(range(256)) * 4, "a binary file"),
        (lambda text: b"just some notes\n", "no data block"),
        (lambda text: text.encode() + b"1 2 3 4 5 6 7\n", "ParserError"),  # pandas: 2 lines
    ],
    ids=["utf-16", "utf-16-no-bom", "utf-32", "latin-1", "nul", "binary", "text", "columns"],
)
def test_a_star_file_that_is_no_utf8_star_says_what_it_is_not_empty(tmp_path, encode, message):
    text = seeds()["star"][0].decode()
    path = tmp_path / "m_manual.star"
    path.write_bytes(encode(text))
    _, said = outcome_and_message(lambda: read_picks(path), path)
    assert message in said and "empty" not in said
    utf8_bom = tmp_path / "bom_manual.star"  # a UTF-8 byte-order mark is UTF-8 still
    utf8_bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert len(read_picks(utf8_bom)) == 2


def test_a_status_json_of_wrong_types_reads_as_defaults(tmp_path):
    run = Run(tmp_path)
    wrong = {
        "state": ["running"],
        "pid": -1,  # never a process group to signal
        "iteration": "40",
        "iterations": 1.5,
        "error": {"x": 1},
        "host": 7,
        "pid_start": True,
    }
    (tmp_path / "status.json").write_text(json.dumps({**wrong, "phase": "training"}))
    status = run.status()
    assert (status.state, status.pid, status.iteration, status.iterations) == (
        "queued",
        None,
        0,
        None,
    )
    assert (status.error, status.host, status.pid_start, status.phase) == (
        None,
        None,
        None,
        "training",
    )
    assert status.fraction == 0.0


def test_bad_metrics_lines_are_skipped_with_a_note(tmp_path):
    run = Run(tmp_path)
    lines = [
        {"iteration": 10, "loss_new": 0.5, "loss_old": None, "lr": 1e-3, "time": 1.0},
        {"iteration": 20, "loss_new": "x", "lr": 1e-3, "time": 2.0},
        {"iteration": "30", "loss_new": 0.4},
        {"iteration": 40, "loss_new": 0.3, "lr": [1], "time": 4.0},
        {"iteration": 50},  # no losses: kept, each missing number None
        {"loss_new": 0.2},
        {"heldout": "f1 0.9"},
        {"heldout": {"micrograph": "m"}, "iteration": 60},
        {"heldout": {"micrograph": "m", "new": {"f1": 0.9}}},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    steps = run.losses()
    assert [step["iteration"] for step in steps] == [10, 50]
    assert steps[1] == {
        "iteration": 50,
        "loss_new": None,
        "loss_old": None,
        "lr": None,
        "time": None,
    }
    assert run.heldout() == {"micrograph": "m", "new": {"f1": 0.9}}
    records, _ = run.read_metrics()
    assert len(records) == 3 and len(run.skipped_metrics) == 6
    notes = "\n".join(run.skipped_metrics)
    assert "loss_new 'x' is not a number" in notes and "iteration '30'" in notes
    assert all(
        note.startswith(f"{tmp_path / 'metrics.jsonl'}: a line skipped (")
        for note in notes.split("\n")
    )

"""Shared fixtures: every test gets its own BOXNET_TUI_HOME, and the real data when present."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The real micrographs beside the repo (../shared/data), or $BOXNET_TUI_SHARED_DATA."""
    configured = os.environ.get("BOXNET_TUI_SHARED_DATA")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("boxnet_home")
    monkeypatch.setenv("BOXNET_TUI_HOME", str(home))
    return home


@pytest.fixture
def real_folder() -> Path:
    folder = shared_data_dir() / "empiar-10017"
    if not folder.is_dir():
        pytest.skip("real data (../shared/data/empiar-10017) is not present")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to prove that nothing was changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def tiny_model() -> str:
    """A tiny untrained masking model in the test's home (seeded): fast to pick with."""
    import torch

    from boxnet_tui.model.network import Architecture, BoxNet
    from boxnet_tui.model.store import ModelInfo, save_model

    tiny = Architecture(widths=(4, 8, 8))
    torch.manual_seed(0)
    return save_model(BoxNet(tiny).eval(), ModelInfo("TinyMask", tiny, has_mask=True)).name


@pytest.fixture
def home(_isolated_home: Path) -> Iterator[Path]:
    """BOXNET_TUI_HOME (the app's too, started from the test); any run left going is
    cancelled."""
    from boxnet_tui.training import runs

    yield _isolated_home
    for run in runs.list_runs():
        if run.status().active:
            try:
                runs.cancel(run, wait=15.0)
            except Exception as error:  # a cleanup: report, never hide the test's own failure
                print(f"could not cancel run {run.name}: {error}")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread: on busy shared cores, OpenMP's spinning threads slow tiny nets 100x."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

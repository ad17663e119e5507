"""The model store: one folder a model, holding ``weights.pt`` and ``model.json``.

Loading and saving weights (torch) live here; what ``model.json`` holds, finding and listing
models live in the torch-free :mod:`boxnet_tui.model.info` and are re-exported here, so that
``from boxnet_tui.model.store import find_model`` keeps working. A user model may not take a
shipped model's name, and nothing is ever written over an existing model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from boxnet_tui.errors import UserError
from boxnet_tui.io.atomic import _umask
from boxnet_tui.model.info import (  # noqa: F401 (re-exported: the store's public names)
    DEFAULT_MODEL,
    MAX_MODEL_JSON_BYTES,
    MODEL_JSON,
    OLD_STAGING_AGE,
    STAGING,
    WEIGHTS,
    ModelInfo,
    _clean_staging,
    _read_info,
    _staging_owner,
    _staging_prefix,
    check_name,
    find_model,
    list_models,
    shipped_models_dir,
)
from boxnet_tui.model.network import BoxNet, place
from boxnet_tui.paths import models_dir


def load_model(
    name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[BoxNet, ModelInfo]:
    """The network with its weights, in eval mode on ``device``, and its description."""
    info = find_model(name_or_path)
    assert info.path is not None
    weights = info.path / WEIGHTS
    network = BoxNet(info.architecture)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network.load_state_dict({k: v.float() for k, v in state.items()})
    except FileNotFoundError:
        raise UserError(f"{weights}: model weights missing") from None
    except Exception as error:
        raise UserError(f"{weights}: unreadable model weights ({error})") from None
    return place(network, device).eval(), info


def save_model(
    network: BoxNet, info: ModelInfo, root: Path | None = None, *, half: bool = True
) -> ModelInfo:
    """Write a new model folder ``<root>/<info.name>`` atomically (never over an existing one).

    Args:
        half: store float16 weights (half the size; the network runs in float32 anyway).
    """
    check_name(info.name)
    root = root or models_dir()
    target = root / info.name
    if target.exists() or ((shipped_models_dir() / info.name).exists() and root == models_dir()):
        raise UserError(f"a model named {info.name!r} exists already; choose another name")
    root.mkdir(parents=True, exist_ok=True)
    info.date = info.date or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _clean_staging(root)
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(info.name), suffix=STAGING, dir=root))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700; a model folder follows the umask
        state = {
            k: (v.half() if half and v.is_floating_point() else v)
            for k, v in network.state_dict().items()
        }
        torch.save(state, staging / WEIGHTS)
        (staging / MODEL_JSON).write_text(json.dumps(info.to_json(), indent=2) + "\n")
        for item in staging.iterdir():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(staging, target)  # fails if target appeared meanwhile: no overwrite
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    info.path, info.shipped = target, False
    return info

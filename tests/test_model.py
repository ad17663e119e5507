"""The network, the model store, tiled inference, labels, augmentation and the loop (tiny nets)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from boxnet_tui.errors import UserError
from boxnet_tui.io.star import Picks
from boxnet_tui.model.inference import predict_probabilities, tiling
from boxnet_tui.model.network import (
    Architecture,
    BoxNet,
    SkipDecoder,
    fuse_for_inference,
    place,
)
from boxnet_tui.model.store import ModelInfo, find_model, list_models, load_model, save_model
from boxnet_tui.paths import models_dir
from boxnet_tui.training.augment import (
    RETRAIN_SIZE_JITTER,
    crop_example,
    crop_grid,
    mosaic_quadrants,
    sample_batch,
)
from boxnet_tui.training.labels import (
    JUNK,
    PARTICLE,
    class_weights,
    label_radius,
    make_example,
    paint_discs,
)
from boxnet_tui.training.loop import TrainConfig, train

TINY = Architecture(widths=(4, 8, 8))


def test_network_output_shape_and_divisor():
    network = BoxNet(TINY).eval()
    with torch.no_grad():
        out = network(torch.zeros(2, 1, 32, 48))
    assert out.shape == (2, 3, 32, 48)
    assert TINY.divisor == 4


def test_context_blocks_see_far_and_round_trip_through_model_json():
    with_context = Architecture(widths=(4, 8, 8), context_blocks=1)
    assert with_context.divisor == 16  # the pooled view needs sides on its grid
    assert Architecture.from_json(with_context.to_json()) == with_context
    assert Architecture.from_json({"widths": [4, 8, 8]}).context_blocks == 0  # older models

    def reach(architecture: Architecture, logit: int) -> int:
        torch.manual_seed(0)
        network = BoxNet(architecture).eval()
        image = torch.randn(1, 1, 128, 128, requires_grad=True)
        network(image)[0, logit, 64, 64].backward()
        touched = (image.grad[0, 0].abs() > 0).any(dim=0).nonzero()
        return int(touched.max() - touched.min() + 1)

    junk, particle = 2, 1
    assert reach(TINY, junk) < 64 <= reach(with_context, junk)
    assert reach(with_context, particle) == reach(TINY, particle)  # the junk class's alone
    network = BoxNet(with_context).eval()
    image = torch.randn(1, 1, 48, 64)
    with torch.no_grad():
        expected = network(image)
        fused = fuse_for_inference(network)(image)
    torch.testing.assert_close(fused, expected, atol=1e-4, rtol=1e-4)


def test_a_strided_stem_halves_the_work_and_gives_logits_at_the_input_size():
    strided = Architecture(widths=(4, 8, 8), stem_stride=2)
    assert strided.divisor == 8  # the stem's halving too
    assert Architecture.from_json(strided.to_json()) == strided
    assert Architecture.from_json({"widths": [4, 8, 8]}).stem_stride == 1  # older models
    torch.manual_seed(0)
    network = BoxNet(strided).eval()
    seen = {}
    network.encoders[0].register_forward_hook(lambda m, i, o: seen.update(first=o.shape))
    image = torch.randn(2, 1, 48, 64)
    with torch.no_grad():
        expected = network(image)
    assert expected.shape == (2, 3, 48, 64)
    assert seen["first"][-2:] == (24, 32)  # the first stage already at half resolution
    # the upsampled logits vary smoothly: no blocky 2x2 copies
    assert not torch.equal(expected[..., 0::2, :], expected[..., 1::2, :])
    with torch.no_grad():
        fused = fuse_for_inference(network)(image)
    torch.testing.assert_close(fused, expected, atol=1e-4, rtol=1e-4)


def test_save_load_list_and_no_overwrite():
    torch.manual_seed(0)
    network = BoxNet(TINY).eval()
    info = save_model(network, ModelInfo("TinyNet", TINY, has_mask=True, parent="BoxNetMask"))
    assert info.path == models_dir() / "TinyNet"
    meta = json.loads((info.path / "model.json").read_text())
    assert meta["has_mask"] is True and meta["parent"] == "BoxNetMask" and meta["date"]
    loaded, loaded_info = load_model("TinyNet")
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), network(x), atol=2e-2, rtol=2e-2)  # float16 store
    assert loaded_info.architecture == TINY
    assert "TinyNet" in [m.name for m in list_models()]
    assert find_model(str(info.path)).name == "TinyNet"
    with pytest.raises(UserError, match="exists already"):
        save_model(network, ModelInfo("TinyNet", TINY))


def test_a_loaded_network_is_channels_last_and_gives_the_same_output():
    """Channels-last is a layout only (faster convolutions on CPU): same numbers, and a model
    saved from it loads into a plain network."""
    torch.manual_seed(0)
    network = BoxNet(TINY).eval()
    x = torch.randn(2, 1, 32, 48)
    with torch.no_grad():
        plain = network(x)
        placed = place(network, "cpu")
        weight = placed.stem[0].weight
        assert weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(placed(x), plain, atol=1e-5, rtol=1e-5)
    save_model(placed, ModelInfo("LayoutNet", TINY))
    loaded, _ = load_model("LayoutNet")
    assert loaded.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), plain, atol=2e-2, rtol=2e-2)  # float16 store


@pytest.mark.parametrize("name", ["has space", "slash/name", "", "é"])
def test_bad_model_names_refused(name):
    with pytest.raises(UserError, match="model name"):
        save_model(BoxNet(TINY), ModelInfo(name, TINY))


def test_missing_model_names_what_exists():
    with pytest.raises(UserError, match="no model named 'Nope'"):
        find_model("Nope")


def test_broken_weights_are_one_line(tmp_path):
    info = save_model(BoxNet(TINY), ModelInfo("Broken", TINY))
    (info.path / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="unreadable model weights"):
        load_model("Broken")


def test_tiled_inference_covers_the_image_and_sums_to_one():
    network = BoxNet(TINY).eval()
    image = np.random.default_rng(0).normal(size=(70, 90)).astype(np.float32)
    whole = predict_probabilities(network, image, tile=128)
    tiled = predict_probabilities(network, image, tile=32, overlap=8)
    assert whole.shape == tiled.shape == (3, 70, 90)
    np.testing.assert_allclose(tiled.sum(axis=0), 1.0, atol=1e-5)
    # away from the image edge (where padding differs), tiles with margins agree with the whole
    np.testing.assert_allclose(tiled[:, 4:-4, 4:-4], whole[:, 4:-4, 4:-4], atol=2e-3)


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "divisor"),
    [
        (70, 32, 8, 4),
        (90, 32, 8, 8),
        (1068, 1024, 64, 16),
        (1025, 1024, 64, 16),
        (4000, 1280, 64, 16),
        (2325, 300, 10, 32),  # rounding the stride up once ran the last tiles off the edge
        (565, 300, 10, 16),
    ],
)
def test_tiles_are_equal_aligned_and_their_kept_parts_cover_the_image(
    length, tile, overlap, divisor
):
    size, starts = tiling(length, tile, overlap, divisor)
    assert size <= tile + 2 * divisor and size % divisor == 0
    assert starts[0] == 0 and starts[-1] + size == length and len(set(starts)) == len(starts)
    assert all(start % divisor == 0 for start in starts[:-1])
    covered = np.zeros(length, int)
    for start in starts:  # what predict_probabilities keeps of each tile
        first = 0 if start == 0 else start + overlap
        last = length if start + size >= length else start + size - overlap
        covered[first:last] += 1
    assert covered.min() >= 1


def test_an_input_just_over_a_tile_costs_two_small_tiles_a_side_not_two_full_ones():
    size, starts = tiling(1068, 1024, 64, 16)
    assert len(starts) == 2 and size * len(starts) < 1.2 * 1068
    assert tiling(1000, 1024, 64, 16) == (1008, [0])  # one tile, padded to the divisor
    with pytest.raises(ValueError, match="keeps nothing"):
        tiling(101, 100, 64, 32)


def test_paint_discs_and_label_radius():
    discs = paint_discs((20, 20), np.array([5.0]), np.array([10.0]), 2.0)
    assert discs.sum() == 13 and discs[10, 5] and not discs[10, 8]
    assert label_radius(200.0) == pytest.approx(200 / 64)
    assert label_radius(40.0) == 1.5


def test_make_example_labels_junk_importance():
    image = np.random.default_rng(1).normal(size=(400, 400)).astype(np.float32)
    picks = Picks([100.0, 300.0], [100.0, 300.0])
    junk = np.zeros((100, 100), bool)
    junk[70:, 70:] = True  # covers the second pick
    example = make_example(
        image,
        2.0,
        picks,
        200.0,
        junk=junk,
        extra_important=Picks([100.0], [300.0]),
        uncertain=Picks([300.0], [100.0]),
        ignore_border=20,
    )
    assert example.image.shape == example.label.shape == (100, 100)
    assert example.label[25, 25] == PARTICLE and example.label[75, 75] == JUNK
    assert example.importance[75, 25] == 4.0  # extra important at (x=100, y=300)
    assert example.importance[25, 75] == 0.0  # uncertain at (x=300, y=100)
    assert example.importance[0, 50] == 0.0 and example.importance[50, 50] == 1.0
    weights = class_weights([example])
    n_particle = (example.label == 1).sum()
    n_background = (example.label == 0).sum()
    n_junk = (example.label == 2).sum()
    assert weights[0] == pytest.approx((n_particle / n_background) ** (1 / 3))
    assert weights[2] == pytest.approx(min(1.0, (n_particle / n_junk) ** (1 / 3)))
    assert weights[1] == 1.0


def test_sample_batch_shapes_and_label_values():
    image = np.random.default_rng(2).normal(size=(400, 400)).astype(np.float32)
    example = make_example(image, 2.0, Picks([200.0], [200.0]), 200.0)
    rng = np.random.default_rng(0)
    images, labels, importance = sample_batch([example], 4, 32, rng, particle_fraction=1.0)
    assert images.shape == (4, 1, 32, 32) and labels.shape == importance.shape == (4, 32, 32)
    assert set(labels.unique().tolist()) <= {0, 1, 2}
    assert (labels == 1).any()  # crops centred near the particle see it


def _crop_of_whole_example(example, matrix, cx, cy, crop):
    """The crop resampled from the whole example, as sample_batch did before windows."""
    import torch
    from torch.nn import functional as F

    grid = crop_grid(matrix, cx, cy, crop, example.image.shape)
    planes = [example.image, example.label.astype(np.float32), example.importance]
    stack = torch.from_numpy(np.stack(planes))[None]
    image = F.grid_sample(stack[:, :1], grid, mode="bilinear", align_corners=False)
    rest = F.grid_sample(stack[:, 1:], grid, mode="nearest", align_corners=False)
    return image, rest


def test_a_crop_from_its_window_equals_the_crop_from_the_whole_example():
    rng = np.random.default_rng(5)
    image = rng.normal(size=(300, 420)).astype(np.float32)
    picks = Picks(rng.uniform(0, 840, 40), rng.uniform(0, 600, 40))
    example = make_example(image, 2.0, picks, 200.0, ignore_border=30)
    height, width = example.image.shape
    for _ in range(200):
        angle = rng.uniform(0, 2 * np.pi)
        sx, sy = rng.uniform(0.6, 1.5, 2)
        flip = rng.choice([-1.0, 1.0])
        cos, sin = np.cos(angle), np.sin(angle)
        matrix = np.array([[cos * sx * flip, -sin * sy], [sin * sx * flip, cos * sy]])
        # centres inside, at the edges and beyond them (a particle-centred crop can be)
        cx, cy = rng.uniform(-40, width + 40), rng.uniform(-40, height + 40)
        crop = int(rng.choice([16, 32, 64]))
        image_w, rest_w = crop_example(example, matrix, cx, cy, crop)
        image_f, rest_f = _crop_of_whole_example(example, matrix, cx, cy, crop)
        np.testing.assert_allclose(image_w.numpy(), image_f.numpy(), atol=1e-4)
        assert (rest_w != rest_f).float().mean() < 0.002  # nearest ties may round apart


def test_size_range_makes_particles_look_larger_or_smaller():
    image = np.random.default_rng(2).normal(size=(400, 400)).astype(np.float32)
    example = make_example(image, 2.0, Picks([200.0], [200.0]), 200.0)

    def particle_area(size_range):
        _, labels, _ = sample_batch(
            [example],
            16,
            64,
            np.random.default_rng(1),
            particle_fraction=1.0,
            size_range=size_range,
        )
        # a crop centred within crop/3 of the particle sees all of it at these sizes
        return (labels == 1).sum(dim=(1, 2)).float().median().item()

    retrain = particle_area(None)
    larger, smaller = particle_area((1.4, 1.4)), particle_area((0.7, 0.7))
    # area goes with the square of the size (0.9-1.1 per axis on top, and pixel rounding)
    assert 1.4**2 * 0.75 < larger / retrain < 1.4**2 * 1.3
    assert 0.7**2 * 0.75 < smaller / retrain < 0.7**2 * 1.3


def test_retraining_changes_a_particle_size_by_at_most_the_retrain_jitter():
    image = np.random.default_rng(2).normal(size=(800, 800)).astype(np.float32)
    # a 600 Å particle at 2 Å/px: its label disc has a radius of 9.4 px at 8 Å/px, large
    # enough for its area to follow the scale within a few percent of pixel rounding
    example = make_example(image, 2.0, Picks([400.0], [400.0]), 600.0)
    rng = np.random.default_rng(4)
    _, plain, _ = sample_batch([example], 1, 96, rng, augment=False, particle_fraction=1.0)
    _, labels, _ = sample_batch([example], 64, 96, rng, particle_fraction=1.0)
    # only crops holding the whole disc (none of it on the crop's edge)
    disc = labels == 1
    edge = disc[:, [0, -1], :].any(dim=(1, 2)) | disc[:, :, [0, -1]].any(dim=(1, 2))
    assert (~edge).sum() > 48
    ratio = disc[~edge].sum(dim=(1, 2)).float() / (plain == 1).sum().float()
    low, high = (1 - RETRAIN_SIZE_JITTER) ** 2, (1 + RETRAIN_SIZE_JITTER) ** 2
    assert low * 0.93 < ratio.min().item() and ratio.max().item() < high * 1.07
    # the scale does vary: not every crop the same size
    assert ratio.max().item() - ratio.min().item() > 0.5 * (high - low)


def test_mosaic_pieces_each_crop_from_quadrants_of_the_batch():
    rng = np.random.default_rng(5)
    # every pixel of crop i holds i: each quadrant says which crop it came from
    image = torch.arange(8, dtype=torch.float32)[:, None, None, None].expand(8, 1, 6, 6)
    label = image[:, 0].long() % 3
    importance = image[:, 0] * 10
    out_image, out_label, out_importance = mosaic_quadrants(image, label, importance, rng)
    assert out_image.shape == image.shape and image[3, 0, 0, 0] == 3  # inputs untouched
    sources = set()
    for rows in (slice(0, 3), slice(3, 6)):
        for cols in (slice(0, 3), slice(3, 6)):
            piece = out_image[:, 0, rows, cols]
            origin = piece[:, :1, :1]
            assert (piece == origin).all()  # a quadrant is one crop's, whole
            # label and importance travel with the image
            assert (out_label[:, rows, cols] == origin.long() % 3).all()
            assert (out_importance[:, rows, cols] == origin * 10).all()
            # each quadrant position is a permutation of the batch: every crop used once
            assert sorted(origin.flatten().tolist()) == list(range(8))
            sources.add(tuple(origin.flatten().tolist()))
    assert (out_image[:, 0, 0, 0] == torch.arange(8)).all()  # the top-left kept
    assert len(sources) > 2  # the other quadrants shuffled


def test_sample_batch_mosaic_only_when_asked():
    image = np.random.default_rng(6).normal(size=(200, 200)).astype(np.float32)
    example = make_example(image, 8.0, Picks([100.0], [100.0]), 160.0)

    def batch(mosaic: bool) -> tuple[torch.Tensor, ...]:
        torch.manual_seed(0)  # the image noise is torch's
        return sample_batch([example], 4, 32, np.random.default_rng(7), mosaic=mosaic)

    plain, again, mixed = batch(False), batch(False), batch(True)
    assert all(torch.equal(a, b) for a, b in zip(plain, again, strict=True))
    # the same crops, pieced together: the top-left quadrants agree, the rest moved
    assert torch.equal(mixed[0][..., :16, :16], plain[0][..., :16, :16])
    assert not torch.equal(mixed[0], plain[0])
    assert TrainConfig().mosaic  # retraining's default


def test_training_lowers_the_loss_on_a_learnable_task():
    # bright discs on noise: a tiny net must learn to label them
    rng = np.random.default_rng(3)
    image = rng.normal(size=(256, 256)).astype(np.float32) * 0.3
    xs, ys = rng.uniform(20, 236, 25), rng.uniform(20, 236, 25)
    yy, xx = np.mgrid[:256, :256]
    for x, y in zip(xs, ys, strict=True):
        image[(yy - y) ** 2 + (xx - x) ** 2 < 16] += 2.0
    example = make_example(image, 8.0, Picks(xs, ys), 64.0)
    torch.manual_seed(0)
    network = BoxNet(TINY)
    lines = []
    train(
        network,
        [example],
        [example],
        TrainConfig(iterations=60, batch_size=4, crop=64, log_every=20, lr=3e-3),
        on_log=lines.append,
    )
    assert [line.iteration for line in lines] == [20, 40, 60]
    assert lines[-1].loss_old is not None
    assert lines[-1].loss_new < lines[0].loss_new


def test_fused_network_gives_the_same_output():
    torch.manual_seed(1)
    network = BoxNet(TINY)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    network.eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = network(x)
        fused = fuse_for_inference(network)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        # every decoder takes the skip without a concatenation
        assert all(isinstance(d, SkipDecoder) for d in fused.decoders)
        torch.testing.assert_close(fused(x), expected, atol=1e-5, rtol=1e-5)


def test_fused_network_keeps_the_channels_last_layout_it_was_placed_in():
    torch.manual_seed(2)
    network = place(BoxNet(TINY), "cpu").eval()
    x = torch.randn(1, 1, 48, 64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = network(x)
        fused = fuse_for_inference(network)
        convs = [m for m in fused.modules() if isinstance(m, torch.nn.Conv2d)]
        wide = [c.weight for c in convs if c.weight.shape[1] > 1 and c.weight.shape[-1] > 1]
        assert wide and all(w.is_contiguous(memory_format=torch.channels_last) for w in wide)
        torch.testing.assert_close(fused(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "change",
    [
        {"widths": [-1, 0]},
        {"widths": [100000] * 5},
        {"widths": []},
        {"widths": [4] * 9},
        {"widths": "4,8"},
        {"widths": [4.5, 8]},
        {"widths": [True, 8]},
        {"widths": [4, 8], "blocks_per_stage": 0},
        {"widths": [4, 8], "blocks_per_stage": 100},
        {"widths": [4, 8], "context_blocks": -1},
        {"widths": [4, 8], "context_blocks": 9},
        {"widths": [4, 8], "context_blocks": 1.5},
        {"widths": [4, 8], "stem_stride": 0},
        {"widths": [4, 8], "stem_stride": 4},
        {"widths": [4, 8], "stem_stride": "2"},
        {"widths": [4, 8], "name": 7},
    ],
)
def test_a_model_json_architecture_beyond_sense_is_one_line(change):
    info = save_model(BoxNet(TINY), ModelInfo("Wild", TINY))
    meta_path = info.path / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["architecture"].update(change)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError) as caught:
        find_model("Wild")  # before any network is built
    message = str(caught.value)
    assert message.startswith(f"{meta_path}: ") and "architecture" in message
    assert "\n" not in message
    assert "Wild" not in [m.name for m in list_models()]  # skipped like any broken folder


@pytest.mark.parametrize("name", ["../../outside/evil", "..", "a\x00b", 5])
def test_a_model_json_name_that_leaves_the_store_is_one_line(name):
    info = save_model(BoxNet(TINY), ModelInfo("Renamed", TINY))
    meta_path = info.path / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["name"] = name
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="model name"):
        find_model("Renamed")
    assert [m.name for m in list_models()] == ["BoxNet", "BoxNetMask"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"has_mask": "false"}, "has_mask"),  # was read as True
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": 7}, "threshold"),
        ({"threshold": "0.5"}, "threshold"),
        ({"pixel_size": -8}, "pixel_size"),
        ({"pixel_size": 10**400}, "pixel_size"),  # OverflowError in float()
        ({"pixels_per_diameter": float("inf")}, "pixels_per_diameter"),
        ({"parent": ["BoxNet"]}, "parent"),
        ({"training": [["a", 1]]}, "training"),
        ({"date": 20240101}, "date"),
    ],
)
def test_a_model_json_value_of_the_wrong_type_is_one_line(change, message):
    info = save_model(BoxNet(TINY), ModelInfo("Typed", TINY))
    meta_path = info.path / "model.json"
    meta = json.loads(meta_path.read_text())
    meta.update(change)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError) as caught:
        find_model("Typed")
    text = str(caught.value)
    assert text.startswith(f"{meta_path}: unreadable model description") and message in text
    assert "\n" not in text
    assert "Typed" not in [m.name for m in list_models()]


@pytest.mark.parametrize(
    "content",
    [b"[" * 100000, b'{"name": "\xff"}', b"\x00" * 64, b'{"a": 1}' + b" " * (1 << 21)],
)
def test_a_model_json_that_is_no_json_is_one_line(content):
    info = save_model(BoxNet(TINY), ModelInfo("Broken", TINY))
    (info.path / "model.json").write_bytes(content)
    with pytest.raises(UserError) as caught:
        find_model(info.path)
    text = str(caught.value)
    assert text.startswith(f"{info.path / 'model.json'}: ") and "\n" not in text


# --------------------------------------------------------------------------- kill -9 mid-save

KILLED_SAVE = """
import os, sys, time
sys.path.insert(0, {repo!r})
import torch
from boxnet_tui.model import store
from boxnet_tui.model.network import Architecture, BoxNet

def stop(*args):  # the staging folder is complete: the rename is where a kill -9 lands
    print("staged", flush=True)
    time.sleep(60)

store.os.rename = stop
store.save_model(BoxNet(Architecture(widths=(4, 8, 8))), store.ModelInfo("KilledSave",
                 Architecture(widths=(4, 8, 8))))
"""


def test_a_save_killed_midway_is_never_listed_and_is_cleaned_up():
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE.format(repo=str(repo))],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert child.stdout.readline().strip() == "staged"
        staged = [p for p in models_dir().iterdir() if p.name.startswith(".")]
        assert len(staged) == 1 and (staged[0] / "model.json").is_file()
        assert "KilledSave" not in [m.name for m in list_models()]  # a live save: kept
        assert staged[0].exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert "KilledSave" not in [m.name for m in list_models()]
    assert not staged[0].exists()  # its process is gone: removed
    save_model(BoxNet(TINY), ModelInfo("KilledSave", TINY))
    assert [m.name for m in list_models()].count("KilledSave") == 1
    assert sorted(p.name for p in models_dir().iterdir()) == ["KilledSave"]


def test_a_model_folder_follows_the_umask():
    import os

    old = os.umask(0o022)
    try:
        info = save_model(BoxNet(TINY), ModelInfo("UmaskNet", TINY))
    finally:
        os.umask(old)
    assert info.path.stat().st_mode & 0o777 == 0o755
    assert (info.path / "model.json").stat().st_mode & 0o777 == 0o644


def test_an_older_versions_staging_folder_is_hidden_and_removed_once_old():
    import os
    import time

    save_model(BoxNet(TINY), ModelInfo("OldStage", TINY))
    old = models_dir() / ".OldStage.ab12cd34"
    os.rename(models_dir() / "OldStage", old)
    assert "OldStage" not in [m.name for m in list_models()] and old.exists()  # young: kept
    past = time.time() - 2 * 24 * 3600
    os.utime(old, (past, past))
    list_models()
    assert not old.exists()

"""A model's input scale: Warp's fixed 8 Å/px or scaled by the particle diameter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from boxnet_tui import imaging
from boxnet_tui.batch_picking import PickSettings, pick_folder, prepare
from boxnet_tui.errors import UserError
from boxnet_tui.imaging import (
    RETRAIN_MAX_SIDE,
    RETRAIN_PIXELS_PER_DIAMETER,
    WARP_SCALE,
    NetworkScale,
)
from boxnet_tui.io import layout
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.star import Picks, read_picks
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import ModelInfo, find_model, save_model
from boxnet_tui.synth import make_dataset, make_micrograph
from boxnet_tui.training.labels import (
    PARTICLE,
    diameter_from_labels,
    make_example,
    rescale_example,
)

TINY = Architecture(widths=(4, 8, 8))
SCALED = NetworkScale(20.0)


def test_scale_pixel_size_highpass_and_json():
    assert WARP_SCALE.pixel_size(60.0) == WARP_SCALE.pixel_size(500.0) == 8.0
    assert WARP_SCALE.highpass(60.0) == 500.0
    assert SCALED.pixel_size(60.0) == 3.0 and SCALED.pixel_size(500.0) == 25.0
    assert SCALED.highpass(190.0) == pytest.approx(494.0)
    assert NetworkScale.from_json(SCALED.to_json()) == SCALED
    assert NetworkScale.from_json(None) == WARP_SCALE
    robust = NetworkScale(20.0, "percentile")
    assert NetworkScale.from_json(robust.to_json(), robust.normalisation) == robust
    with pytest.raises(ValueError, match="normalisation"):
        NetworkScale(20.0, "z-score")
    for bad in (0.5, float("nan"), 1e6, "x"):
        with pytest.raises(ValueError):
            NetworkScale.from_json(bad)


def test_the_scale_is_kept_in_model_json_and_old_models_read_as_warps():
    import torch

    torch.manual_seed(0)
    saved = save_model(BoxNet(TINY).eval(), ModelInfo("ScaledTiny", TINY, scale=SCALED))
    assert find_model(saved.name).scale == SCALED
    warp = save_model(BoxNet(TINY).eval(), ModelInfo("WarpTiny", TINY))
    assert find_model(warp.name).scale == WARP_SCALE
    robust = NetworkScale(20.0, "percentile")
    saved = save_model(BoxNet(TINY).eval(), ModelInfo("RobustTiny", TINY, scale=robust))
    assert find_model(saved.name).scale == robust
    # a model.json from before the choice (no "normalisation") reads as mean-std
    meta = json.loads((saved.path / "model.json").read_text())
    del meta["normalisation"]
    (saved.path / "model.json").write_text(json.dumps(meta))
    assert find_model(saved.name).scale.normalisation == "mean-std"


def test_a_model_json_normalisation_beyond_sense_is_one_line():
    import torch

    torch.manual_seed(0)
    saved = save_model(BoxNet(TINY).eval(), ModelInfo("OddNorm", TINY, scale=SCALED))
    meta = json.loads((saved.path / "model.json").read_text())
    meta["normalisation"] = "z-score"
    (saved.path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(UserError) as error:
        find_model(str(saved.path))
    assert "normalisation" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("diameter", [60.0, 180.0, 480.0])
def test_particles_are_the_same_size_in_pixels_whatever_their_diameter(tmp_path, diameter):
    pixel = diameter / 40  # 40 px across in the micrograph
    synthetic = make_micrograph(1024, pixel, diameter, seed=3)
    example = make_example(
        synthetic.image, pixel, synthetic.picks, diameter, name="a", scale=SCALED
    )
    assert example.image.shape == (512, 512)  # 40 px -> 20 px
    assert abs(float(example.image.mean())) < 0.2
    # each label disc sits on its particle: centroids map back to the picks
    from scipy import ndimage

    components, count = ndimage.label(example.label == PARTICLE)
    assert count >= 0.8 * len(synthetic.picks)
    centres = np.array(ndimage.center_of_mass(components > 0, components, range(1, count + 1)))
    back = centres[:, ::-1] * 2.0  # (x, y) in micrograph pixels
    nearest = np.min(np.linalg.norm(back[:, None] - synthetic.picks.xy[None], axis=2), axis=1)
    assert np.median(nearest) < 1.5
    assert diameter_from_labels(example.label, SCALED.pixel_size(diameter)) == pytest.approx(
        diameter, rel=0.3
    )


def test_a_warp_example_at_8a_is_rescaled_to_the_models_scale():
    diameter, pixel = 320.0, 4.0
    synthetic = make_micrograph(1024, pixel, diameter, seed=5)
    warp = make_example(synthetic.image, pixel, synthetic.picks, diameter, name="w")
    assert warp.image.shape == (512, 512)  # 8 Å/px
    assert diameter_from_labels(warp.label) == pytest.approx(diameter, rel=0.2)
    scaled = rescale_example(warp, SCALED)
    direct = make_example(synthetic.image, pixel, synthetic.picks, diameter, scale=SCALED)
    assert scaled.image.shape == direct.image.shape == (256, 256)  # 16 Å/px
    assert scaled.label.dtype == warp.label.dtype and set(np.unique(scaled.label)) <= {0, 1, 2}
    # the same particles are labelled, within a pixel of where the direct example has them
    assert abs(int((scaled.label == PARTICLE).sum()) - int((direct.label == PARTICLE).sum())) < (
        0.3 * (direct.label == PARTICLE).sum()
    )
    correlation = np.corrcoef(scaled.image.ravel(), direct.image.ravel())[0, 1]
    assert correlation > 0.9
    assert rescale_example(warp, WARP_SCALE) is warp


def test_a_scaled_model_picks_in_micrograph_pixels_and_writes_masks_at_8a(tmp_path):
    import torch

    folder = tmp_path / "mics"
    make_dataset(folder, 1, size=768, pixel_size=2.0, diameter=180.0, seed=11)
    torch.manual_seed(0)
    name = save_model(
        BoxNet(TINY).eval(), ModelInfo("ScaledMask", TINY, has_mask=True, scale=SCALED)
    ).name
    settings = PickSettings(diameter=180.0, threshold=0.0)
    prepared = prepare(folder / "synth_000.mrc", settings, find_model(name).scale)
    assert prepared.pixel_size == pytest.approx(9.0, rel=0.01)  # 180 Å / 20 px
    assert prepared.image.shape == (170, 170) and prepared.mask_shape == (192, 192)
    summary = pick_folder(folder, name, settings, device="cpu")
    assert summary.picked == 1 and not summary.errors
    picks = read_picks(layout.pick_path(folder, "synth_000", name))
    assert isinstance(picks, Picks)
    if len(picks):
        assert picks.x.max() < 768 and picks.y.max() < 768
    assert read_mask(layout.mask_path(folder, "synth_000")).shape == (192, 192)


def test_a_retrained_model_sees_the_particle_finer_unless_it_is_warps():
    scaled = NetworkScale(20.0, "percentile")
    assert scaled.retrained() == NetworkScale(RETRAIN_PIXELS_PER_DIAMETER, "percentile")
    assert scaled.retrained().retrained() == scaled.retrained()  # a retrained one stays
    assert WARP_SCALE.retrained() == WARP_SCALE  # Warp's models keep 8 Å/px
    assert NetworkScale.from_json(None).retrained().pixel_size(180.0) == 8.0


def test_a_retrained_model_is_coarser_where_its_micrographs_would_be_large():
    scaled = NetworkScale(20.0, "percentile")
    # the ribosome (1024 px at 5.36 Å/px, 300 Å) and beta-galactosidase (4096 px at 1.77, 190 Å)
    # fit at 28 px a diameter: 512 and 1068 px a side
    assert scaled.retrained(300.0, 1024 * 5.36).pixels_per_diameter == RETRAIN_PIXELS_PER_DIAMETER
    assert scaled.retrained(190.0, 4096 * 1.77).pixels_per_diameter == RETRAIN_PIXELS_PER_DIAMETER
    # 120 Å at 1.7 Å/px would be 1625 px a side: the scale that makes it RETRAIN_MAX_SIDE
    small = scaled.retrained(120.0, 4096 * 1.7)
    assert small.pixels_per_diameter == pytest.approx(22.1)
    assert small.normalisation == "percentile"
    assert 4096 * 1.7 / small.pixel_size(120.0) == pytest.approx(RETRAIN_MAX_SIDE, rel=0.01)
    # never coarser than the base: 60 Å at 1 Å/px would need 18.8 px
    assert scaled.retrained(60.0, 4096 * 1.0).pixels_per_diameter == 20.0
    assert NetworkScale(22.1).retrained(60.0, 4096 * 1.0).pixels_per_diameter == 22.1
    # without the micrographs' extent, or for Warp's 8 Å/px models, as before
    assert scaled.retrained(120.0, None) == scaled.retrained()
    assert WARP_SCALE.retrained(120.0, 4096 * 1.7) == WARP_SCALE


def test_a_retraining_on_large_micrographs_records_the_coarser_scale(tmp_path, monkeypatch):
    """The run reads its micrographs' headers, retrains at the scale that fits and says so."""
    import torch

    from boxnet_tui.training import job
    from boxnet_tui.training.runs import DONE, create_run
    from tests.test_runs import make_config

    folder = tmp_path / "mics"
    make_dataset(folder, 2, size=256, pixel_size=4.0, diameter=120.0, seed=1)
    # 1024 Å a side: 239 px at 28 px a diameter, over a limit of 200
    monkeypatch.setattr(imaging, "RETRAIN_MAX_SIDE", 200)
    torch.manual_seed(0)
    base = save_model(
        BoxNet(TINY).eval(), ModelInfo("ScaledBase", TINY, has_mask=True, scale=SCALED)
    ).name
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = create_run(make_config(folder, "CoarserRetrained", base, iterations=4))
        assert job.run_job(run.path) == DONE, run.tail_log(20)
    finally:
        torch.set_num_threads(threads)
    expected = round(200 * 120.0 / 1024.0, 1)  # 23.4
    assert find_model("CoarserRetrained").scale.pixels_per_diameter == expected
    assert f"to train on at {expected:g} px a diameter" in (run.path / "log.txt").read_text()


def test_retraining_a_scaled_model_with_warps_8a_example_tiffs_as_public_set(tmp_path):
    """Warp's example TIFFs stay 8 Å/px on disk; a diameter-scaled base trains on them."""
    import torch

    from boxnet_tui.io.examples import write_examples
    from boxnet_tui.training import job
    from boxnet_tui.training.export import collect_examples
    from boxnet_tui.training.runs import DONE, create_run
    from tests.test_runs import make_config

    folder = tmp_path / "mics"
    make_dataset(folder, 3, size=256, pixel_size=4.0, diameter=120.0, seed=1)
    public = tmp_path / "public"
    public.mkdir()
    star = folder / "matching" / "synth_000_truth.star"
    warp = collect_examples(folder, star, 120.0)  # Warp's format: 8 Å/px
    assert warp[0].image.shape == (128, 128)
    write_examples(public / "old.tif", warp)
    torch.manual_seed(0)
    base = save_model(
        BoxNet(TINY).eval(), ModelInfo("ScaledBase", TINY, has_mask=True, scale=SCALED)
    ).name
    assert collect_examples(folder, star, 120.0, scale=SCALED)[0].image.shape == (170, 170)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = make_config(folder, "ScaledRetrained", base, public_set=str(public), hold_out=True)
        run = create_run(config)
        assert job.run_job(run.path) == DONE, run.tail_log(20)
    finally:
        torch.set_num_threads(threads)
    info = find_model("ScaledRetrained")
    # retrained finer than its base (RETRAIN_PIXELS_PER_DIAMETER), normalised as its base
    assert info.scale == SCALED.retrained() and info.parent == "ScaledBase"
    assert info.scale.pixels_per_diameter == RETRAIN_PIXELS_PER_DIAMETER
    assert info.scale.normalisation == SCALED.normalisation
    assert all(m["loss_old"] is not None for m in run.metrics() if "iteration" in m)
    assert "held-out synth_002" in (run.path / "log.txt").read_text()

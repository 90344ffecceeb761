"""Loading checkpoint files end to end: family, dtype, VAE swap, errors, model cache."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from safetensors.torch import load_file, save_file

from sdtui import hookimpl
from sdtui.models.checkpoint_file import CheckpointError, load_state_dict
from sdtui.models.families import FAMILIES, get_family
from sdtui.models.ldm_export import export_ldm_state_dict
from sdtui.models.loader import load_checkpoint, probe_v_prediction
from sdtui.runtime.model_cache import ModelCache
from tests.plugin_helpers import empty_host
from tests.tiny_models import write_tiny_checkpoint


def test_sd1_loads_into_the_requested_dtype(tmp_path) -> None:
    path = write_tiny_checkpoint(tmp_path / "tiny.safetensors", "sd1", dtype=torch.float16)
    model = load_checkpoint(path, dtype=torch.float32)
    assert model.family.id == "sd1" and model.dtype == torch.float32
    assert {p.dtype for p in model.unet.parameters()} == {torch.float32}
    exported = export_ldm_state_dict(family=model.family, **model.components.modules())
    stored = load_file(str(path))
    assert exported.keys() == stored.keys()
    for key, tensor in stored.items():
        assert torch.equal(exported[key], tensor.float()), key


def test_streaming_reader_equals_safetensors(tmp_path) -> None:
    path = write_tiny_checkpoint(tmp_path / "tiny.safetensors", "sdxl", dtype=torch.bfloat16)
    ours, metadata = load_state_dict(path)
    theirs = load_file(str(path))
    assert ours.keys() == theirs.keys() and metadata["sdtui.family"] == "sdxl"
    assert all(torch.equal(ours[k], theirs[k]) and ours[k].dtype == theirs[k].dtype for k in ours)
    converted, _ = load_state_dict(path, dtype=torch.float16)
    assert {t.dtype for t in converted.values() if t.is_floating_point()} == {torch.float16}


def test_vae_file_replaces_the_baked_in_vae(tmp_path) -> None:
    base = write_tiny_checkpoint(tmp_path / "base.safetensors", "sd1", seed=1)
    other = write_tiny_checkpoint(tmp_path / "other.safetensors", "sd1", seed=2)
    prefix = "first_stage_model."
    vae_tensors = {
        k.removeprefix(prefix): v for k, v in load_file(str(other)).items() if k.startswith(prefix)
    }
    vae_path = tmp_path / "my.vae.safetensors"
    save_file({**vae_tensors, "loss.logvar": torch.zeros(())}, str(vae_path))
    model = load_checkpoint(base, vae=vae_path)
    assert model.vae_path == vae_path
    expected = vae_tensors["decoder.conv_out.weight"]
    assert torch.equal(model.vae.decoder.conv_out.weight, expected)
    baked = load_checkpoint(base)
    assert not torch.equal(baked.vae.decoder.conv_out.weight, expected)


def test_sd2_prediction_type_from_yaml_or_probe(tmp_path) -> None:
    path = write_tiny_checkpoint(tmp_path / "sd2.safetensors", "sd2", metadata=False)
    probed = load_checkpoint(path)
    assert probed.family.prediction_type in ("epsilon", "v_prediction")
    assert probed.family.prediction_type == (
        "v_prediction" if probe_v_prediction(probed.unet) else "epsilon"
    )
    path.with_suffix(".yaml").write_text("model:\n  params:\n    parameterization: v\n")
    from_yaml = load_checkpoint(path)
    assert from_yaml.family.prediction_type == "v_prediction"
    assert from_yaml.family.native_size == 768


def test_not_a_model_and_corrupt_files_name_the_file(tmp_path) -> None:
    junk = tmp_path / "junk.safetensors"
    save_file({"some.weight": torch.zeros(3)}, str(junk))
    with pytest.raises(CheckpointError, match=r"junk.safetensors: not a Stable Diffusion"):
        load_checkpoint(junk)
    path = write_tiny_checkpoint(tmp_path / "cut.safetensors", "sd1")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"cut.safetensors: truncated"):
        load_checkpoint(path)
    good = write_tiny_checkpoint(tmp_path / "good.safetensors", "sd1")
    bad_vae = tmp_path / "bad.vae.safetensors"
    save_file({"unrelated.weight": torch.zeros(2)}, str(bad_vae))
    with pytest.raises(CheckpointError, match=r"bad.vae.safetensors: no VAE tensors"):
        load_checkpoint(good, vae=bad_vae)


def test_plugins_can_name_the_family(tmp_path) -> None:
    path = write_tiny_checkpoint(tmp_path / "tiny.safetensors", "sd1")
    calls = []

    class Plugin:
        @hookimpl
        def detect_model_family(self, keys, metadata):
            calls.append(len(keys))
            return get_family("sd1")

    host = empty_host()
    host.add_plugin(Plugin(), name="families")
    assert load_checkpoint(path, plugin_host=host).family == FAMILIES["sd1"]
    assert calls and calls[0] > 100


def test_switching_checkpoints_leaves_no_unloaded_module_alive(tmp_path) -> None:
    paths = [write_tiny_checkpoint(tmp_path / f"m{i}.safetensors", "sd1", seed=i) for i in range(3)]
    cache = ModelCache(torch.device("cpu"), max_in_ram=1)
    loaded: list[tuple[str, weakref.ref]] = []

    def loader(path):
        model = load_checkpoint(path)
        loaded.append((str(path), weakref.ref(model.unet)))
        return model

    for _ in range(3):
        for index in (0, 1, 2, 1):
            cache.get(str(paths[index]), lambda p=paths[index]: loader(p))
    gc.collect()
    cached = set(cache.keys())
    alive = [key for key, ref in loaded if ref() is not None]
    assert len(loaded) >= 6  # models really were unloaded and loaded again
    assert sorted(alive) == sorted(cached) and len(cached) == 2


def test_automatic_vae_beside_the_checkpoint_is_loaded(data_dirs) -> None:
    from sdtui.models.discovery import discover_checkpoints, resolve_vae

    path = write_tiny_checkpoint(data_dirs.checkpoints / "model.safetensors", "sd1", seed=1)
    donor = load_file(
        str(write_tiny_checkpoint(data_dirs.root / "donor.safetensors", "sd1", seed=5))
    )
    vae = {
        k.removeprefix("first_stage_model."): v
        for k, v in donor.items()
        if k.startswith("first_stage_model.")
    }
    save_file(vae, str(data_dirs.checkpoints / "model.vae.safetensors"))
    (checkpoint,) = discover_checkpoints(data_dirs)
    chosen = resolve_vae(checkpoint, "Automatic", data_dirs)
    assert chosen == data_dirs.checkpoints / "model.vae.safetensors"
    assert resolve_vae(checkpoint, "None", data_dirs) is None
    model = load_checkpoint(path, vae=chosen)
    assert torch.equal(model.vae.encoder.conv_in.weight, vae["encoder.conv_in.weight"])

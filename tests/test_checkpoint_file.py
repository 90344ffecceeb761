"""Reading .safetensors / .ckpt model files safely (sdtui.models.checkpoint_file)."""

from __future__ import annotations

import builtins
import json
import os
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from sdtui.models import checkpoint_file
from sdtui.models.checkpoint_file import CheckpointError, load_state_dict, read_header

LIGHTNING_MODULE = "pytorch_lightning.callbacks.model_checkpoint"
LIGHTNING_KEY = f"<class '{LIGHTNING_MODULE}.ModelCheckpoint'>"


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "model.diffusion_model.input_blocks.0.0.weight": torch.randn(4, 4, 3, 3, generator=g),
        "model.diffusion_model.input_blocks.0.0.bias": torch.randn(4, generator=g).half(),
        "first_stage_model.decoder.conv_in.weight": torch.randn(2, 2, 1, 1, generator=g),
    }


def _make_marker(path: str) -> None:
    """What a malicious pickle would run: leaves evidence that code ran."""
    Path(path).write_text("code ran")


class _RunsCode:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def _assert_error(path: Path, match: str | None = None) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_state_dict(path)
    message = str(info.value)
    assert str(path) in message and "expected" in message
    if match:
        assert match in message, message
    return info.value


# ---------------------------------------------------------------------------- (a) malicious


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    ("func", "global_name"),
    [(os.system, "posix.system"), (builtins.exec, "exec"), (_make_marker, "_make_marker")],
    ids=["os.system", "exec", "module-function"],
)
def test_pickle_that_runs_code_is_refused(tmp_path, legacy, func, global_name):
    marker = tmp_path / "marker.txt"
    arg = {
        os.system: f"touch {marker}",
        builtins.exec: f"open({str(marker)!r}, 'w').write('ran')",
        _make_marker: str(marker),
    }[func]
    path = tmp_path / "evil.ckpt"
    payload = {"state_dict": {"w": torch.ones(2)}, "evil": _RunsCode(func, arg)}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)

    for call in (load_state_dict, read_header):
        with pytest.raises(CheckpointError) as info:
            call(path)
        message = str(info.value)
        assert str(path) in message
        assert global_name in message and "refused" in message and "run code" in message
    assert not marker.exists()


def test_the_malicious_fixture_really_runs_code_when_unpickled_unsafely(tmp_path):
    """Oracle for the test above: an unrestricted load does run the payload."""
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.ckpt"
    torch.save({"evil": _RunsCode(_make_marker, str(marker))}, path)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


# ---------------------------------------------------------------------------- (b) real SD1 shape


@pytest.fixture
def fake_lightning(monkeypatch):
    """A stand-in `pytorch_lightning.callbacks.model_checkpoint` module, only while saving."""
    module = types.ModuleType(LIGHTNING_MODULE)

    class ModelCheckpoint:
        def __init__(self) -> None:
            self.monitor = None
            self.best_model_score = torch.tensor(0.25)
            self.dirpath = "/logs/checkpoints"

    ModelCheckpoint.__module__ = LIGHTNING_MODULE
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    module.ModelCheckpoint = ModelCheckpoint
    for name in ("pytorch_lightning", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, LIGHTNING_MODULE, module)
    return ModelCheckpoint


def _sd1_checkpoint(callbacks: dict) -> dict:
    return {
        "state_dict": _tensors(),
        "global_step": np.int64(470000),
        "epoch": 6,
        "pytorch-lightning_version": "1.4.2",
        "callbacks": callbacks,
    }


def _check_sd1(path: Path) -> None:
    tensors, metadata = load_state_dict(path)
    assert tensors.keys() == _tensors().keys()
    for key, value in _tensors().items():
        assert torch.equal(tensors[key], value) and tensors[key].dtype == value.dtype
    assert metadata["global_step"] == "470000" and metadata["epoch"] == "6"
    header = read_header(path)
    assert header.shapes == {k: tuple(v.shape) for k, v in _tensors().items()}
    assert header.dtypes["model.diffusion_model.input_blocks.0.0.bias"] == "F16"


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_sd1_checkpoint_with_callbacks_keyed_by_string_loads(tmp_path, legacy):
    path = tmp_path / "sd1.ckpt"
    callbacks = {LIGHTNING_KEY: {"best_model_score": torch.tensor(0.5), "monitor": None}}
    torch.save(_sd1_checkpoint(callbacks), path, _use_new_zipfile_serialization=not legacy)
    _check_sd1(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_sd1_checkpoint_with_pickled_lightning_class_loads(
    tmp_path, legacy, fake_lightning, monkeypatch
):
    path = tmp_path / "sd1.ckpt"
    callbacks = {fake_lightning: {"best_model_score": torch.tensor(0.5)}, "obj": fake_lightning()}
    torch.save(_sd1_checkpoint(callbacks), path, _use_new_zipfile_serialization=not legacy)
    for name in ("pytorch_lightning", "pytorch_lightning.callbacks", LIGHTNING_MODULE):
        monkeypatch.delitem(sys.modules, name)
    _check_sd1(path)
    assert "pytorch_lightning" not in sys.modules  # nothing was imported to load it


def test_checkpoint_pickled_by_numpy_1_loads(tmp_path):
    """Old checkpoints name `numpy.core.multiarray.scalar` (numpy < 2)."""
    path = tmp_path / "old.ckpt"
    torch.save(_sd1_checkpoint({}), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in data or b"numpy.core.multiarray\nscalar" in data
    path.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    _check_sd1(path)


def test_numpy_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.ckpt"
    torch.save({"w": torch.ones(1), "x": np.array([object()], dtype=object)}, path)
    _assert_error(path, "refused")


# ---------------------------------------------------------------------------- (c) broken files


def _write_safetensors(path: Path, tensors=None, metadata=None) -> Path:
    save_file(tensors if tensors is not None else _tensors(), str(path), metadata=metadata)
    return path


def test_safetensors_roundtrip(tmp_path):
    path = _write_safetensors(tmp_path / "m.safetensors", metadata={"format": "pt", "x": "1"})
    tensors, metadata = load_state_dict(path)
    assert metadata == {"format": "pt", "x": "1"}
    for key, value in _tensors().items():
        assert torch.equal(tensors[key], value)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_truncated_files(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    if suffix == ".safetensors":
        _write_safetensors(path)
    else:
        torch.save({"state_dict": _tensors()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    _assert_error(path, "truncated")
    with pytest.raises(CheckpointError, match="truncated"):
        read_header(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt", ".pt", ".bin"])
def test_random_bytes(tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    _assert_error(path)


def test_text_file_renamed(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("These are my notes about prompts, not a model.\n" * 20)
    _assert_error(path, "corrupt")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.touch()
    _assert_error(path, "empty")


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_file_without_tensors(tmp_path, suffix):
    path = tmp_path / f"meta{suffix}"
    if suffix == ".safetensors":
        _write_safetensors(path, tensors={}, metadata={"just": "metadata"})
    else:
        torch.save({"state_dict": {}, "epoch": 3}, path)
    _assert_error(path, "no tensors")
    with pytest.raises(CheckpointError, match="no tensors"):
        read_header(path)


def test_pickle_of_a_non_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.ones(1)], path)
    _assert_error(path, "list")


def test_missing_file_and_unknown_extension(tmp_path):
    _assert_error(tmp_path / "nope.safetensors", "not found")
    other = tmp_path / "model.gguf"
    other.write_bytes(b"GGUF")
    err = _assert_error(other, "unknown file extension")
    assert ".safetensors" in str(err) and ".ckpt" in str(err)


def test_header_with_wrong_tensor_size(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    _assert_error(path, "needs 16 bytes")


@settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_any_truncation_is_a_checkpoint_error(tmp_path, cut):
    path = tmp_path / "cut.safetensors"
    full = tmp_path / "full.safetensors"
    if not full.exists():
        _write_safetensors(full)
    data = full.read_bytes()
    path.write_bytes(data[: cut % len(data)])
    with pytest.raises(CheckpointError):
        load_state_dict(path)


# ---------------------------------------------------------------------------- (d) headers


def test_read_header_matches_safetensors_and_skips_tensor_data(tmp_path, monkeypatch):
    """A 4 GiB (sparse) data part: read_header reads only the header bytes."""
    header = {
        "__metadata__": {"modelspec.title": "big"},
        "big": {"dtype": "F16", "shape": [32768, 65536], "data_offsets": [0, 2**32]},
        "small": {"dtype": "BF16", "shape": [2], "data_offsets": [2**32, 2**32 + 4]},
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + 2**32 + 4)

    read_bytes = []
    real_open = builtins.open

    def counting_open(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        real_read = handle.read

        def read(n=-1):
            data = real_read(n)
            read_bytes.append(len(data))
            return data

        handle.read = read
        return handle

    monkeypatch.setattr(checkpoint_file, "open", counting_open, raising=False)
    result = read_header(path)
    assert sum(read_bytes) == 8 + len(raw)
    assert result.shapes == {"big": (32768, 65536), "small": (2,)}
    assert result.dtypes == {"big": "F16", "small": "BF16"}
    assert result.metadata == {"modelspec.title": "big"}
    assert result.format == "safetensors"


def test_read_header_agrees_with_safe_open(tmp_path):
    path = _write_safetensors(tmp_path / "m.safetensors", metadata={"ss_network_dim": "4"})
    header = read_header(path)
    with safe_open(str(path), framework="pt") as f:
        assert header.metadata == f.metadata()
        for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            assert header.shapes[key] == tuple(f.get_slice(key).get_shape())
    assert set(header.shapes) == set(_tensors())


def test_pickle_module_is_untouched_by_loading(tmp_path):
    """The allowlist is scoped to our calls (context manager), not process-global."""
    path = tmp_path / "sd1.ckpt"
    torch.save(_sd1_checkpoint({}), path)
    before = set(map(repr, torch.serialization.get_safe_globals()))
    load_state_dict(path)
    assert set(map(repr, torch.serialization.get_safe_globals())) == before


def test_self_referencing_state_dict_terminates(tmp_path):
    path = tmp_path / "loop.ckpt"
    inner: dict = {"w": torch.ones(2)}
    inner["state_dict"] = inner
    torch.save(inner, path)
    tensors, _ = load_state_dict(path)
    assert list(tensors) == ["w"]

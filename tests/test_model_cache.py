"""The model cache: active model on the device, LRU in RAM, evicted models really freed."""

from __future__ import annotations

import gc
import random
import threading
import weakref

import pytest
import torch

from sdtui.runtime import model_cache as cache_module
from sdtui.runtime.model_cache import ModelCache

GPU = "fake-gpu"


class Tracked:
    """A model that records where it was moved."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.device = "cpu"
        self.moves: list[str] = []

    def to(self, device):
        self.device = str(device)
        self.moves.append(self.device)
        return self


class Container:
    """A small container of modules whose `.to` returns None."""

    def __init__(self) -> None:
        self.unet = torch.nn.Linear(2, 2)
        self.vae = torch.nn.Linear(2, 2)

    def to(self, device):
        self.unet.to(device)
        self.vae.to(device)


class Loaders:
    def __init__(self, factory=Tracked) -> None:
        self.factory = factory
        self.calls: list[str] = []

    def __call__(self, key: str):
        def load():
            self.calls.append(key)
            return self.factory(key)

        return load


def test_the_active_model_is_on_the_device_and_the_previous_one_in_ram():
    cache, loaders = ModelCache(GPU, max_in_ram=1), Loaders()
    a = cache.get("a", loaders("a"))
    assert a.device == GPU and cache.active_key == "a" and cache.active is a
    assert cache.get("a", loaders("a")) is a
    b = cache.get("b", loaders("b"))
    assert (a.device, b.device) == ("cpu", GPU)
    assert cache.keys() == ["b", "a"] and "a" in cache and len(cache) == 2
    assert cache.get("a", loaders("a")) is a  # back from RAM, not rebuilt
    assert (a.device, b.device) == (GPU, "cpu")
    assert loaders.calls == ["a", "b"]
    c = cache.get("c", loaders("c"))
    assert cache.keys() == ["c", "a"] and "b" not in cache
    assert c.device == GPU and a.moves == [GPU, "cpu", GPU, "cpu"]


def test_least_recently_used_models_leave_ram_first():
    cache, loaders = ModelCache(GPU, max_in_ram=2), Loaders()
    for key in "abca":
        cache.get(key, loaders(key))
    cache.get("d", loaders("d"))
    assert cache.keys() == ["d", "a", "c"]  # b was used least recently
    cache.get("b", loaders("b"))
    assert cache.keys() == ["b", "d", "a"]
    assert loaders.calls == ["a", "b", "c", "d", "b"]


def test_max_in_ram_zero_keeps_only_the_active_model():
    cache, loaders = ModelCache(GPU, max_in_ram=0), Loaders()
    first = weakref.ref(cache.get("a", loaders("a")))
    cache.get("b", loaders("b"))
    gc.collect()
    assert cache.keys() == ["b"] and first() is None
    with pytest.raises(ValueError, match="max_in_ram"):
        ModelCache(GPU, max_in_ram=-1)


def test_switching_back_and_forth_leaves_no_evicted_model_alive(monkeypatch):
    # a full gc.collect() costs ~0.1 s with torch loaded: collect once per round, here
    monkeypatch.setattr(cache_module, "free_device_memory", lambda: None)
    cache = ModelCache("cpu", max_in_ram=1)
    alive: dict[str, list[weakref.ref]] = {key: [] for key in "abc"}

    def loader(key):
        def load():
            model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
            alive[key].append(weakref.ref(model))
            return model

        return load

    for round_ in range(4):
        for key in "abcb" if round_ % 2 else "cbab":
            assert cache.get(key, loader(key)) is not None
        gc.collect()
        living = {k for k, refs in alive.items() for ref in refs if ref() is not None}
        assert living == set(cache.keys())
        assert sum(ref() is not None for refs in alive.values() for ref in refs) == 2
    assert sum(len(refs) for refs in alive.values()) > 4  # evicted models were rebuilt
    cache.unload_all()
    gc.collect()
    assert all(ref() is None for refs in alive.values() for ref in refs)


def test_real_modules_move_between_device_and_ram():
    # dtypes stand in for devices: `.to(dtype)` is lossless both ways, unlike cpu <-> meta
    cache = ModelCache(torch.float64, max_in_ram=1, offload_device=torch.float32)
    first = cache.get("a", lambda: torch.nn.Linear(3, 3))
    weight = first.weight.detach().clone()
    second = cache.get("b", Container)
    assert first.weight.dtype == torch.float32
    assert second.unet.weight.dtype == torch.float64  # a `.to` returning None keeps the object
    assert cache.get("a", lambda: pytest.fail("reloaded")) is first
    assert first.weight.dtype == torch.float64 and second.vae.weight.dtype == torch.float32
    assert torch.equal(first.weight.float(), weight)


def test_a_module_lands_on_the_meta_device():
    cache = ModelCache(torch.device("meta"))
    model = cache.get("a", lambda: torch.nn.Linear(3, 3))
    assert model.weight.device.type == "meta"


def test_a_failing_loader_leaves_the_cache_as_it_was():
    cache, loaders = ModelCache(GPU, max_in_ram=1), Loaders()
    a, b = cache.get("a", loaders("a")), cache.get("b", loaders("b"))

    def broken():
        raise OSError("checkpoint c.safetensors is truncated")

    with pytest.raises(OSError, match="truncated"):
        cache.get("c", broken)
    assert cache.keys() == ["b", "a"] and cache.active is b
    assert (a.device, b.device) == ("cpu", GPU)
    with pytest.raises(ValueError, match="returned None"):
        cache.get("c", lambda: None)
    assert cache.keys() == ["b", "a"]
    assert cache.get("c", loaders("c")).device == GPU
    with pytest.raises(ValueError, match="cannot be None"):
        cache.get(None, loaders("none"))


def test_running_out_of_memory_while_moving_drops_the_new_model():
    class TooBig(Tracked):
        def to(self, device):
            if str(device) == GPU:
                raise RuntimeError("CUDA out of memory")
            return super().to(device)

    cache, loaders = ModelCache(GPU, max_in_ram=1), Loaders()
    cache.get("a", loaders("a"))
    refs: list[weakref.ref] = []

    def load_big():
        model = TooBig("big")
        refs.append(weakref.ref(model))
        return model

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get("big", load_big)
    gc.collect()
    assert refs[0]() is None
    assert cache.active_key is None and cache.keys() == ["a"]
    assert cache.get("a", loaders("a")).device == GPU


def test_unload_frees_memory(monkeypatch):
    freed: list[bool] = []
    monkeypatch.setattr(cache_module, "free_device_memory", lambda: freed.append(True))
    cache, loaders = ModelCache(GPU, max_in_ram=1), Loaders()
    for key in "abc":
        cache.get(key, loaders(key))
    assert freed == [True]  # "a" was evicted
    assert cache.unload("b") and cache.keys() == ["c"]
    assert cache.unload("c") and cache.active_key is None and cache.keys() == []
    assert not cache.unload("zzz")
    assert len(freed) == 3


def test_concurrent_gets_are_consistent(monkeypatch):
    monkeypatch.setattr(cache_module, "free_device_memory", lambda: None)
    cache = ModelCache(GPU, max_in_ram=1)
    loading = threading.Semaphore(1)
    overlaps: list[str] = []
    start = threading.Barrier(4)

    def load(key):
        if not loading.acquire(blocking=False):
            overlaps.append(key)
        try:
            return Tracked(key)
        finally:
            loading.release()

    errors: list[str] = []

    def worker(seed: int) -> None:
        chooser = random.Random(seed)
        start.wait(5)
        for _ in range(40):
            key = chooser.choice("abcd")
            if cache.get(key, lambda k=key: load(k)).name != key or len(cache.keys()) > 2:
                errors.append(f"{key}: {cache.keys()}")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert overlaps == [] and errors == []
    assert cache.active.device == GPU and cache.active.name == cache.active_key

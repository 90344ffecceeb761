"""Device and dtype choice, SDPA attention, memory figures, and the Runtime object."""

from __future__ import annotations

import builtins
import os
import sys
import threading
import warnings

import pytest
import torch

from sdtui import hookimpl
from sdtui.plugins import PluginHost
from sdtui.runtime import Runtime
from sdtui.runtime import device as device_module
from sdtui.runtime.device import (
    DeviceError,
    PrecisionWarning,
    choose_device,
    choose_dtype,
    configure_attention,
    describe,
    dtype_name,
    memory_info,
)
from sdtui.runtime.jobs import Finished


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has `cuda` GPUs and maybe MPS: machine(cuda=2, mps=False)."""

    def pretend(cuda: int = 0, mps: bool = False, current: int = 0) -> None:
        monkeypatch.setattr(device_module, "_cuda_device_count", lambda: cuda)
        monkeypatch.setattr(device_module, "_cuda_current_index", lambda: current)
        monkeypatch.setattr(device_module, "_mps_available", lambda: mps)

    return pretend


# -- device ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(0, False, "cpu"), (0, True, "mps"), (2, True, "cuda:0"), (1, False, "cuda:0")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert choose_device(None) == torch.device(expected)
    assert choose_device("auto") == torch.device(expected)


def test_explicit_devices(machine):
    machine(cuda=2, mps=True, current=1)
    assert choose_device("cuda") == torch.device("cuda:1")  # the current CUDA device
    assert choose_device("cuda:0") == torch.device("cuda:0")
    assert choose_device(" CPU ") == torch.device("cpu")
    assert choose_device("mps") == torch.device("mps")
    assert choose_device(torch.device("cuda", 1)) == torch.device("cuda:1")


@pytest.mark.parametrize("request_", ["cuda", "cuda:0", "mps"])
def test_an_unavailable_device_is_refused_listing_what_is_there(machine, request_):
    machine(cuda=0, mps=False)
    with pytest.raises(DeviceError, match=r"not available \(available: cpu\)"):
        choose_device(request_)


def test_a_missing_gpu_index_is_refused(machine):
    machine(cuda=2)
    with pytest.raises(DeviceError, match="cpu, cuda, cuda:0, cuda:1"):
        choose_device("cuda:2")


@pytest.mark.parametrize("request_", ["gpu", "cuda:x", "meta", "cuda:-1:2", "xla"])
def test_a_malformed_device_is_refused_naming_the_valid_forms(machine, request_):
    machine(cuda=1)
    with pytest.raises(DeviceError, match=r"unknown device .*cuda:N or mps") as error:
        choose_device(request_)
    assert "available here: cpu, cuda, cuda:0" in str(error.value)


def test_on_this_machine_auto_gives_a_usable_device():
    device = choose_device()
    assert torch.ones(2, device=device).sum().item() == 2


# -- precision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("cpu", None, torch.float32),
        ("cpu", "auto", torch.float32),
        ("cuda:0", "auto", torch.float16),
        ("mps", "autocast", torch.float16),
        ("cuda:0", "full", torch.float32),
        ("cuda:0", "FP32", torch.float32),
        ("cuda:0", "half", torch.float16),
        ("cpu", "bf16", torch.bfloat16),
        ("mps", "float32", torch.float32),
    ],
)
def test_precision_rules(device, precision, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these warns
        assert choose_dtype(device, precision) == expected


def test_bf16_needs_a_gpu_that_has_it(monkeypatch):
    monkeypatch.setattr(device_module, "_cuda_supports_bf16", lambda device: False)
    with pytest.raises(DeviceError, match="bf16 is not supported on cuda:0"):
        choose_dtype(torch.device("cuda:0"), "bf16")
    monkeypatch.setattr(device_module, "_cuda_supports_bf16", lambda device: True)
    assert choose_dtype(torch.device("cuda:0"), "bfloat16") == torch.bfloat16


def test_fp16_on_the_cpu_works_but_warns():
    with pytest.warns(PrecisionWarning, match="slow"):
        assert choose_dtype("cpu", "fp16") == torch.float16


def test_an_unknown_precision_lists_the_valid_ones():
    with pytest.raises(DeviceError, match=r"'fp8'.*auto, fp32, fp16, bf16, .*full.*half"):
        choose_dtype("cpu", "fp8")


def test_dtype_names():
    assert [dtype_name(t) for t in (torch.float32, torch.float16, torch.bfloat16)] == [
        "fp32",
        "fp16",
        "bf16",
    ]
    assert dtype_name(torch.float64) == "float64"


# -- attention ------------------------------------------------------------------------------


def tiny_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
    ).eval()


def test_configure_attention_switches_to_sdpa_with_the_same_output():
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    unet = tiny_unet()
    unet.set_attn_processor(AttnProcessor())  # the classic, non-SDPA implementation
    sample, context = torch.randn(1, 4, 8, 8), torch.randn(1, 3, 8)
    with torch.no_grad():
        before = unet(sample, 10, encoder_hidden_states=context).sample
        assert configure_attention(unet) == 1
        after = unet(sample, 10, encoder_hidden_states=context).sample
    processors = unet.attn_processors.values()
    assert processors and all(type(p) is AttnProcessor2_0 for p in processors)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_configure_attention_keeps_custom_processors_and_finds_nested_models():
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    class Custom(AttnProcessor):
        pass

    unet = tiny_unet()
    names = list(unet.attn_processors)
    unet.set_attn_processor(
        {name: Custom() if name == names[0] else AttnProcessor() for name in names}
    )
    holder = torch.nn.ModuleDict({"unet": unet, "head": torch.nn.Linear(2, 2)})
    assert configure_attention(holder) == 1
    kinds = {name: type(p) for name, p in unet.attn_processors.items()}
    assert kinds[names[0]] is Custom
    assert all(kinds[name] is AttnProcessor2_0 for name in names[1:])
    assert configure_attention(torch.nn.Linear(2, 2)) == 0


# -- memory and description -----------------------------------------------------------------


def test_cpu_memory_matches_the_kernel():
    free, total = memory_info("cpu")
    assert 0 < free <= total
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        assert total == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_cpu_memory_without_proc_meminfo(monkeypatch):
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    expected_total = memory_info("cpu")[1]
    monkeypatch.setattr(builtins, "open", no_proc)
    free, total = memory_info("cpu")
    assert total == expected_total and 0 <= free <= total


def test_cuda_memory_comes_from_torch(monkeypatch):
    asked: list = []
    monkeypatch.setattr(
        torch.cuda, "mem_get_info", lambda d: asked.append(d) or (3 * 2**30, 8 * 2**30)
    )
    assert memory_info("cuda:0") == (3 * 2**30, 8 * 2**30)
    assert asked == [torch.device("cuda:0")]
    assert describe(torch.device("cuda:0"), torch.float16, memory=True) == (
        "cuda:0 · fp16 · 3.0/8.0 GiB free"
    )


def test_describe_for_the_status_bar():
    assert describe(torch.device("cpu"), torch.float32) == "cpu · fp32"
    assert describe("cpu", torch.bfloat16, memory=True).startswith("cpu · bf16 · ")


def test_free_device_memory_empties_the_cuda_cache_only_when_cuda_is_up(monkeypatch):
    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    device_module.free_device_memory()
    assert emptied == []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    device_module.free_device_memory()
    assert emptied == [True]


# -- the Runtime object ---------------------------------------------------------------------


class Watcher:
    def __init__(self) -> None:
        self.runtimes: list = []

    @hookimpl
    def runtime_ready(self, runtime):
        self.runtimes.append(runtime)


def test_runtime_starts_tells_plugins_and_shuts_down():
    host = PluginHost(builtins=(), load_entry_points=False)
    early, late = Watcher(), Watcher()
    host.add_plugin(early, name="early")
    runtime = Runtime.start(device="cpu", precision="auto", plugin_host=host)
    try:
        assert early.runtimes == [runtime]
        host.add_plugin(late, name="late")  # historic: a later plugin gets it too
        assert late.runtimes == [runtime]
        assert (runtime.device, runtime.dtype) == (torch.device("cpu"), torch.float32)
        assert runtime.describe() == "cpu · fp32" and runtime.attention == "sdpa"

        def job(context):
            return runtime.models.get("tiny", lambda: torch.nn.Linear(2, 2))

        final = runtime.jobs.submit(job, name="load", kind="load").wait(5)
        assert isinstance(final, Finished) and runtime.models.keys() == ["tiny"]
    finally:
        runtime.shutdown(timeout=5)
    assert not runtime.jobs.alive and runtime.models.keys() == []
    assert host.failures == []


def test_a_bad_request_fails_before_any_thread_starts():
    def workers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("sdtui-")}

    before = workers()
    with pytest.raises(DeviceError, match="precision"):
        Runtime.start(device="cpu", precision="quarter")
    with pytest.raises(DeviceError, match="device"):
        Runtime.start(device="tpu")
    assert workers() == before


RELEASE_PROBE = """
import os
from sdtui.runtime.device import release_host_memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

big = bytearray(16 << 20)
del big  # glibc raises its mmap threshold: later 8 MB blocks live in the heap
blocks = [bytearray(8 << 20) for _ in range(64)]
kept = blocks[1::2]  # every other block stays, so the freed ones sit inside the heap
del blocks
before = rss()
released = release_host_memory()
print(released, (before - rss()) >> 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_host_memory_hands_freed_heap_back() -> None:
    import subprocess

    output = subprocess.run(
        [sys.executable, "-c", RELEASE_PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert output[0] == "True"
    assert int(output[1]) >= 200  # of the 256 MB freed between live blocks

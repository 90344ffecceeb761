"""The status names the checkpoint that is loaded: a load that fails goes back to the one
before (or none) and says that it failed."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

import pytest

from sdtui.params.schema import GenerationParams
from sdtui.runtime.job_events import FINAL_EVENTS, Failed, Finished
from sdtui.services.backend import Backend, BackendStatus
from sdtui.widgets.status_bar import status_text
from tests.tiny_models import write_tiny_checkpoint
from tests.tui_helpers import make_app, wait_until

GARBAGE = b"\x10\x00garbage, not a model"


class Recorder:
    """Collects a backend's events; `wait_final(job_id)` waits for a job's last event."""

    def __init__(self, backend: Backend) -> None:
        self.events: list[Any] = []
        self.finished = threading.Condition()
        backend.add_listener(self._on_event)

    def _on_event(self, event: Any) -> None:
        with self.finished:
            self.events.append(event)
            self.finished.notify_all()

    def wait_final(self, job_id: int, timeout: float = 120.0) -> Any:
        def final() -> Any:
            return next(
                (e for e in self.events if isinstance(e, FINAL_EVENTS) and e.job_id == job_id),
                None,
            )

        with self.finished:
            assert self.finished.wait_for(final, timeout), f"job {job_id} did not end"
            return final()


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.02)


def sha_prefix(path: Any) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


@pytest.fixture
def backend(data_dirs):
    write_tiny_checkpoint(data_dirs.checkpoints / "a-tiny.safetensors", "sd1")
    (data_dirs.checkpoints / "zz-broken.safetensors").write_bytes(GARBAGE)
    backend = Backend(data_dirs, device="cpu")
    recorder = Recorder(backend)
    backend.start()
    yield backend, recorder
    backend.shutdown()


def test_a_failed_load_names_the_checkpoint_still_loaded(backend, data_dirs) -> None:
    backend, recorder = backend
    good = data_dirs.checkpoints / "a-tiny.safetensors"
    # start-up loaded the first checkpoint; the status names it with its hash
    assert isinstance(recorder.wait_final(1), Finished)
    wait_for(lambda: backend.status.checkpoint_hash is not None)
    assert backend.status.checkpoint == "a-tiny"
    assert backend.status.checkpoint_hash == sha_prefix(good)

    handle = backend.load_model(backend.choose_model("zz-broken"))
    assert isinstance(recorder.wait_final(handle.id), Failed)
    named = [e.checkpoint for e in recorder.events if isinstance(e, BackendStatus)]
    assert "zz-broken" in named  # named while it loaded, as A1111 does
    wait_for(lambda: backend.status.checkpoint_hash is not None)
    status = backend.status
    assert (status.checkpoint, status.checkpoint_hash) == ("a-tiny", sha_prefix(good))
    assert status.vae == "None"
    line = status_text(status, None, None)
    assert "loading zz-broken failed" in line and f"a-tiny [{sha_prefix(good)}]" in line
    assert "zz-broken" not in line.replace("loading zz-broken failed", "")

    # a good load clears the message
    handle = backend.load_model(backend.choose_model("a-tiny"))
    assert isinstance(recorder.wait_final(handle.id), Finished)
    wait_for(lambda: backend.status.checkpoint_hash is not None)
    assert backend.status.message == "ready"
    assert backend.status.checkpoint == "a-tiny"


def test_a_generation_on_a_broken_checkpoint_leaves_the_loaded_one_named(backend) -> None:
    backend, recorder = backend
    assert isinstance(recorder.wait_final(1), Finished)
    params = GenerationParams(
        prompt="a cat", model="zz-broken.safetensors", steps=1, width=64, height=64, seed=1
    )
    handle, _ = backend.submit_txt2img(backend.prepare(params))
    assert isinstance(recorder.wait_final(handle.id), Failed)
    assert backend.status.checkpoint == "a-tiny"
    # the job's own failure message is the screen's; the status does not claim a load job
    assert backend.status.message == "ready"


def test_nothing_loaded_after_a_broken_default_names_no_checkpoint(data_dirs) -> None:
    (data_dirs.checkpoints / "broken.safetensors").write_bytes(GARBAGE)
    backend = Backend(data_dirs, device="cpu")
    recorder = Recorder(backend)
    try:
        backend.start()
        assert isinstance(recorder.wait_final(1), Failed)
        status = backend.status
        assert status.checkpoint is None and status.native_size is None
        assert status.message == "loading broken failed"
        statuses = [e for e in recorder.events if isinstance(e, BackendStatus)]
        assert statuses[-1] == status  # the last snapshot the app received says the same
    finally:
        backend.shutdown()


async def test_the_status_bar_shows_it(data_dirs) -> None:
    from textual.widgets import Static

    (data_dirs.checkpoints / "broken.safetensors").write_bytes(GARBAGE)
    app = make_app(data_dirs)
    async with app.run_test(size=(160, 50)) as pilot:
        bar = app.screen.query_one("StatusBar", Static)
        await wait_until(pilot, lambda: "loading broken failed" in str(bar.render()))
        assert "broken" not in str(bar.render()).replace("loading broken failed", "")

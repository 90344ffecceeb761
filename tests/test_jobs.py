"""The job queue: ordering, events, progress timing, interrupt/skip/cancel, failures, OOM."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import weakref

import pytest

from sdtui.runtime import jobs as jobs_module
from sdtui.runtime.job_context import _RateMeter
from sdtui.runtime.job_events import coalesce
from sdtui.runtime.jobs import (
    Cancelled,
    Failed,
    Finished,
    ImageSkipped,
    Interrupted,
    JobQueue,
    JobState,
    Preview,
    Progress,
    Queued,
    Started,
    is_out_of_memory,
)

WAIT = 5.0  # generous: only reached when something is broken


@pytest.fixture
def queue():
    jobs = JobQueue()
    yield jobs
    jobs.shutdown(timeout=WAIT)


def collect(queue: JobQueue) -> list:
    events: list = []
    queue.add_listener(events.append)
    return events


def blocker(queue: JobQueue) -> tuple[threading.Event, threading.Event, object]:
    """Submit a job that signals `started` and waits for `release`."""
    started, release = threading.Event(), threading.Event()

    def job(context):
        started.set()
        assert release.wait(WAIT)
        return "blocker"

    handle = queue.submit(job, name="blocker")
    assert started.wait(WAIT)
    return started, release, handle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_jobs_run_in_submission_order_with_lifecycle_events(queue):
    events = collect(queue)
    ran: list[int] = []
    handles = [queue.submit(lambda c, i=i: ran.append(i) or i, name=f"j{i}") for i in range(5)]
    assert handles[-1].wait(WAIT) == Finished(handles[-1].id, 4, ())
    assert ran == [0, 1, 2, 3, 4]
    assert [h.result for h in handles] == [0, 1, 2, 3, 4]
    assert all(h.state is JobState.FINISHED for h in handles)
    assert [h.id for h in handles] == sorted({h.id for h in handles})
    assert queue.join_events(WAIT)
    first = [type(e) for e in events if e.job_id == handles[0].id]
    assert first == [Queued, Started, Finished]
    assert events[0] == Queued(handles[0].id, "j0", "job", 0)
    finished = [e.job_id for e in events if isinstance(e, Finished)]
    assert finished == [h.id for h in handles]


def test_progress_reports_rate_and_eta_from_timestamps():
    clock = FakeClock()
    with JobQueue(clock=clock, coalesce_events=False) as queue:
        events = collect(queue)

        def job(context):
            for step in range(11):
                context.progress(step, 10, text="image 1/1")
                clock.now += 0.5  # two steps per second
            context.preview("picture")

        queue.submit(job, name="steps", kind="txt2img").wait(WAIT)
        assert queue.join_events(WAIT)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == list(range(11))
    assert progress[0].it_per_s is None and progress[0].eta_s is None
    assert progress[4].it_per_s == pytest.approx(2.0)
    assert progress[4].eta_s == pytest.approx(3.0)  # 6 steps left at 0.5 s
    assert progress[-1].eta_s == pytest.approx(0.0)
    assert progress[-1].text == "image 1/1"
    assert [e.image for e in events if isinstance(e, Preview)] == ["picture"]


def test_rate_is_smoothed_and_survives_the_next_image_of_a_batch():
    clock = FakeClock()
    meter = _RateMeter(clock)
    for step in range(5):
        meter.update(step, 20)
        clock.now += 1.0
    clock.now += 30.0  # a slow VAE decode between images
    meter.update(0, 20)  # next image: baseline restarts, rate is kept
    clock.now += 1.0
    rate, eta = meter.update(1, 20)
    assert rate == pytest.approx(1.0)
    assert eta == pytest.approx(19.0)
    clock.now += 3.0  # one slow step moves the average part of the way
    rate, _ = meter.update(2, 20)
    assert 1 / 3 < rate < 1.0


def test_progress_rate_with_the_real_clock_is_plausible(queue):
    events = collect(queue)

    def job(context):
        for step in range(4):
            context.progress(step, 3)
            time.sleep(0.01)

    queue.submit(job, name="sleepy").wait(WAIT)
    assert queue.join_events(WAIT)
    last = [e for e in events if isinstance(e, Progress)][-1]
    assert 0 < last.it_per_s <= 110  # a 10 ms sleep cannot run faster than 100 it/s
    assert last.eta_s == 0


def test_interrupt_keeps_finished_results_and_the_next_job_runs(queue):
    two_done, go_on = threading.Event(), threading.Event()

    def job(context):
        for index in range(5):
            context.check()
            context.add_result(f"image {index}")
            if index == 1:
                two_done.set()
                assert go_on.wait(WAIT)

    handle = queue.submit(job, name="batch")
    after = queue.submit(lambda c: "after", name="after")
    assert two_done.wait(WAIT)
    assert queue.running == handle.id
    assert queue.interrupt()
    go_on.set()
    assert handle.wait(WAIT) == Interrupted(handle.id, ("image 0", "image 1"))
    assert handle.state is JobState.INTERRUPTED
    assert after.wait(WAIT).result == "after"
    assert not queue.interrupt()  # idle: nothing to interrupt


def test_skip_abandons_the_current_image_only(queue):
    reached, skipped = threading.Event(), threading.Event()

    def make(index, context):
        if index == 1:
            reached.set()
            assert skipped.wait(WAIT)
            context.check()  # raises ImageSkipped
        return index * 10

    handle = queue.submit(lambda c: c.for_each(range(3), lambda i: make(i, c)), name="b")
    assert reached.wait(WAIT)
    assert queue.skip()
    skipped.set()
    final = handle.wait(WAIT)
    assert final == Finished(handle.id, [0, 20], (0, 20))


def test_skip_between_images_does_not_skip_the_next_one(queue):
    def job(context):
        def make(index):
            if index == 0:
                context._skip.set()  # pressed after image 0's last check
            return index

        return context.for_each(range(3), make)

    assert queue.submit(job, name="b").wait(WAIT).result == [0, 1, 2]


def test_skippable_block_and_uncaught_skip(queue):
    def job(context):
        with context.skippable():
            context._skip.set()
            context.check()
            context.add_result("never")
        assert not context.skip_requested
        context.add_result("kept")
        context._skip.set()
        context.check()  # uncaught: the job ends as finished with what it has

    handle = queue.submit(job, name="s")
    assert handle.wait(WAIT) == Finished(handle.id, None, ("kept",))


def test_cancel_queued_removes_waiting_jobs_only(queue):
    events = collect(queue)
    _, release, running = blocker(queue)
    ran: list[str] = []
    waiting = [queue.submit(lambda c, n=n: ran.append(n), name=n) for n in "abc"]
    assert queue.queued() == [h.id for h in waiting]
    assert queue.cancel_queued() == [h.id for h in waiting]
    assert all(h.wait(0) == Cancelled(h.id) for h in waiting)
    assert all(h.state is JobState.CANCELLED for h in waiting)
    release.set()
    assert running.wait(WAIT).result == "blocker"
    assert queue.submit(lambda c: "later", name="later").wait(WAIT).result == "later"
    assert ran == []
    assert queue.join_events(WAIT)
    for handle in waiting:
        assert [type(e) for e in events if e.job_id == handle.id] == [Queued, Cancelled]


def test_cancel_one_job_and_cancel_the_running_one(queue):
    _, release, running = blocker(queue)
    assert queue.running == running.id
    ran: list[str] = []
    a, b, c = (queue.submit(lambda ctx, n=n: ran.append(n), name=n) for n in "abc")
    assert b.cancel()
    assert not queue.cancel(b.id)  # already cancelled
    assert not queue.cancel(12345)  # unknown
    release.set()
    c.wait(WAIT)
    assert ran == ["a", "c"]
    assert (a.state, b.state, c.state) == (JobState.FINISHED, JobState.CANCELLED, JobState.FINISHED)

    started = threading.Event()

    def loop(context):
        started.set()
        while True:
            context.check()
            time.sleep(0.001)

    handle = queue.submit(loop, name="loop")
    assert started.wait(WAIT)
    assert queue.cancel(handle.id)
    assert isinstance(handle.wait(WAIT), Interrupted)


def test_a_failing_job_is_reported_and_the_worker_goes_on(queue):
    def broken(context):
        context.add_result("first image")
        raise ValueError("bad prompt")

    handle = queue.submit(broken, name="broken")
    final = handle.wait(WAIT)
    assert isinstance(final, Failed)
    assert final.error_message == "ValueError: bad prompt"
    assert not final.out_of_memory
    assert "broken" in final.traceback and "bad prompt" in final.traceback
    assert final.results == ("first image",)
    assert handle.state is JobState.FAILED and handle.result is None
    assert queue.submit(lambda c: "fine", name="next").wait(WAIT).result == "fine"
    assert queue.alive


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


class Big:
    pass


@pytest.mark.parametrize(
    "error",
    [
        OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 4.00 GiB total)"),
    ],
)
def test_out_of_memory_is_flagged_memory_is_freed_and_the_next_job_runs(queue, monkeypatch, error):
    freed: list[bool] = []
    real_free = jobs_module.free_device_memory
    monkeypatch.setattr(
        jobs_module, "free_device_memory", lambda: freed.append(True) or real_free()
    )
    alive: list[weakref.ref] = []

    def greedy(context):
        activations = Big()  # held by this frame, hence by the exception's traceback
        alive.append(weakref.ref(activations))
        raise error

    final = queue.submit(greedy, name="huge").wait(WAIT)
    assert isinstance(final, Failed) and final.out_of_memory
    assert "out of memory" in final.error_message
    assert freed == [True]
    error.__traceback__ = None  # the test's own reference to the exception
    gc.collect()
    assert alive[0]() is None
    assert queue.submit(lambda c: "small", name="small").wait(WAIT).result == "small"


def test_is_out_of_memory_recognises_torch_and_not_other_errors():
    torch = pytest.importorskip("torch")
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # not a runtime error


def test_listeners_run_on_the_event_thread_and_survive_each_other(queue):
    threads: list[str] = []
    seen: list = []

    def broken(event):
        raise RuntimeError("listener bug")

    queue.add_listener(broken)
    queue.add_listener(lambda e: threads.append(threading.current_thread().name))
    remove = queue.add_listener(seen.append)
    queue.submit(lambda c: None, name="one").wait(WAIT)
    assert queue.join_events(WAIT)
    remove()
    queue.submit(lambda c: None, name="two").wait(WAIT)
    assert queue.join_events(WAIT)
    assert [type(e) for e in seen] == [Queued, Started, Finished]
    assert set(threads) == {"sdtui-events"}
    assert len(threads) == 6


def test_a_slow_listener_gets_only_the_latest_progress(queue):
    gate = threading.Event()
    seen: list = []

    def slow(event):
        seen.append(event)
        if isinstance(event, Queued):
            assert gate.wait(WAIT)

    queue.add_listener(slow)

    def job(context):
        for step in range(50):
            context.progress(step, 49)

    handle = queue.submit(job, name="fast")
    handle.wait(WAIT)
    gate.set()
    assert queue.join_events(WAIT)
    steps = [e.step for e in seen if isinstance(e, Progress)]
    assert steps[-1] == 49 and len(steps) < 50 and steps == sorted(steps)
    assert isinstance(seen[-1], Finished)


def test_coalesce_keeps_order_and_other_events():
    events = [Started(1, "a", "k"), Progress(1, 1, 3, None, None), Preview(1, "x")]
    events += [Progress(2, 1, 3, None, None), Progress(1, 2, 3, 1.0, 1.0), Finished(1, None)]
    assert coalesce(events) == [events[0], events[2], events[3], events[4], events[5]]


def test_wait_times_out_while_the_job_runs(queue):
    _, release, handle = blocker(queue)
    waiting = queue.submit(lambda c: "x", name="waiting")
    with pytest.raises(TimeoutError, match="blocker"):
        handle.wait(0.01)
    with pytest.raises(TimeoutError, match="queued"):
        waiting.wait(0)
    assert handle.state is JobState.RUNNING and not handle.done
    release.set()
    assert waiting.wait(WAIT).result == "x"


def test_many_jobs_from_several_threads(queue):
    ran: list[tuple[int, int]] = []
    handles: list = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def submitter(thread: int) -> None:
        start.wait(WAIT)
        for index in range(25):
            handle = queue.submit(lambda c, t=thread, i=index: ran.append((t, i)), name="n")
            with lock:
                handles.append(handle)

    threads = [threading.Thread(target=submitter, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    for handle in handles:
        handle.wait(WAIT)
    assert sorted(ran) == [(t, i) for t in range(4) for i in range(25)]
    for thread in range(4):  # each thread's jobs ran in the order it submitted them
        assert [i for t, i in ran if t == thread] == list(range(25))
    assert len({h.id for h in handles}) == 100


def test_shutdown_cancels_interrupts_and_refuses_new_jobs():
    queue = JobQueue()
    started = threading.Event()

    def loop(context):
        started.set()
        while True:
            context.check()
            time.sleep(0.001)

    running = queue.submit(loop, name="loop")
    waiting = queue.submit(lambda c: None, name="waiting")
    assert started.wait(WAIT)
    queue.shutdown(timeout=WAIT)
    assert isinstance(running.wait(0), Interrupted)
    assert waiting.wait(0) == Cancelled(waiting.id)
    assert not queue.alive
    assert queue._worker.daemon and queue._dispatcher.daemon
    with pytest.raises(RuntimeError, match="shut down"):
        queue.submit(lambda c: None, name="late")


def test_importing_the_job_api_does_not_import_torch():
    code = "import sys, sdtui.runtime, sdtui.runtime.jobs; print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.stdout.strip() == "False", output.stderr


def test_check_raises_interrupt_before_skip(queue):
    def job(context):
        context._skip.set()
        context._interrupt.set()
        assert context.interrupted and context.skip_requested
        with pytest.raises(jobs_module.JobInterrupted):
            context.check()
        with pytest.raises(ImageSkipped):
            context._interrupt.clear()
            context.check()
        return "checked"

    assert queue.submit(job, name="c").wait(WAIT).result == "checked"


def test_shutdown_from_inside_a_job_does_not_wait_for_itself():
    queue = JobQueue()
    handle = queue.submit(lambda context: queue.shutdown(), name="quit")
    assert isinstance(handle.wait(WAIT), Finished)
    queue.shutdown(timeout=WAIT)
    assert not queue.alive and not queue._dispatcher.is_alive()

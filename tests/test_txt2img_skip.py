"""Skip abandons the batch being made; the next batches of the batch count still run."""

from __future__ import annotations

from sdtui.params.schema import GenerationParams
from sdtui.runtime.jobs import JobQueue
from tests.test_txt2img import run


def test_skip_abandons_only_the_current_batch() -> None:
    made = []

    def job(context):
        calls = {"n": 0}
        check = context.check

        def check_and_skip_once() -> None:
            calls["n"] += 1
            if calls["n"] == 2:  # during the first batch's second step
                context._queue.skip()
            check()

        context.check = check_and_skip_once
        return run(
            GenerationParams(prompt="x", steps=3, batch_count=3, sampler="Euler"),
            context=context,
            on_image=made.append,
        )

    with JobQueue() as queue:
        handle = queue.submit(job, name="txt2img")
        handle.wait(timeout=300)
    assert [result.index for result in handle.result] == [1, 2]
    assert [result.params.seed for result in made] == [12, 13]  # seed 11 was skipped

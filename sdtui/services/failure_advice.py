"""What to tell the user when a job fails: the error as it was raised, then what to do.

    title, text = failure_advice("CheckpointError: /m/x.safetensors: truncated ...", False)

Jobs report failures as `"<ExceptionType>: <message>"` (`sdtui.runtime.jobs`); the messages
already name the file or value at fault and list valid options where there are any. This
adds the next step for each kind of failure, so the message says what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass

OUT_OF_MEMORY = (
    "Out of memory. Lower the width and height or the batch size (or use hires fix from a "
    "smaller first pass), or close other programs using the GPU; then generate again."
)
# exception type name -> (title, what to do)
ADVICE: dict[str, tuple[str, str]] = {
    "CheckpointError": (
        "Cannot read a model file",
        "Choose another checkpoint under Checkpoint (or remove the <lora:…> tag naming this "
        "file). A file that was just downloaded may be incomplete: download it again.",
    ),
    "FamilyDetectionError": (
        "Not a Stable Diffusion checkpoint",
        "Choose another checkpoint under Checkpoint; this file is not an SD1.x, SD2.x or SDXL "
        "checkpoint (a LoRA or VAE belongs in models/Lora or models/VAE).",
    ),
    "CheckpointKeysError": (
        "Checkpoint does not fit its model",
        "Choose another checkpoint under Checkpoint; the file may be damaged or of a kind "
        "sdtui does not read yet.",
    ),
    "LoraNotFoundError": (
        "Unknown LoRA",
        "Fix the name in the <lora:…> tag; Ctrl+N lists the LoRA files.",
    ),
    "ModelNotFoundError": (
        "Model not found",
        "Choose a checkpoint under Checkpoint, or put one in models/Stable-diffusion.",
    ),
    "ExtraNetworkError": (
        "Bad extra-network tag",
        "Fix the tag in the prompt: <lora:name:multiplier>, e.g. <lora:add_detail:0.8>.",
    ),
    "UnsupportedModule": (
        "Unsupported LoRA",
        "This LoRA uses a layer type sdtui does not apply; remove its <lora:…> tag.",
    ),
    "ParameterError": ("Check the parameters", "Correct the values named above."),
    "UnknownNameError": ("Check the parameters", "Pick one of the names listed above."),
}
GENERIC = (
    "Generation failed",
    "The images made before the error are kept. Change the parameters or the model and "
    "generate again.",
)


@dataclass(frozen=True)
class Advice:
    title: str
    text: str


def error_type(message: str) -> str:
    """ "CheckpointError: ..." -> "CheckpointError"; "" when there is no type prefix."""
    head, separator, _rest = message.partition(": ")
    return head if separator and head.isidentifier() else ""


def failure_advice(message: str, out_of_memory: bool = False) -> Advice:
    """The title and text for a failed job's message."""
    kind = error_type(message)
    shown = message[len(kind) + 2 :] if kind else message
    if out_of_memory:
        return Advice("Out of memory", f"{shown}\n{OUT_OF_MEMORY}")
    title, todo = ADVICE.get(kind, GENERIC)
    return Advice(title, f"{shown}\n{todo}")

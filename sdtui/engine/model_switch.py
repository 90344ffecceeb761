"""The model a txt2img run is using now, and switching it mid-run (hires checkpoint, refiner).

    active = ActiveModel(model, tiling=True, encoder_options={...})
    active.use_networks(first_pass_networks)
    active.switch(other.hires.load)          # True when another model became active
    ...
    active.release()                         # the last model restored (call in `finally`)

A run starts on the request's checkpoint; its hires pass may run on the hires checkpoint and
the refiner takes over in the middle of a pass. Whichever model is active is prepared for
the run: tiling's circular padding, the pass's LoRA networks on its weights, and a prompt
encoder over its text encoders with the embeddings that fit it. Switching away restores the
outgoing model exactly (padding modes and weights, as loaded) and drops the references the
run held to it, so a model cache that keeps one model only can let it go. The loaders come
from the caller (the job loads through the runtime's model cache, so a switch may move the
previous model off the device); a loader that returns the active model switches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sdtui.engine.conditioning import PromptEncoder
from sdtui.engine.tiling import CircularPadding
from sdtui.models.embedding_db import EmbeddingSet, UsedEmbeddings
from sdtui.models.networks import AppliedNetwork, network_patch

# Values of a checkpoint field that mean "none" (A1111's UI and API spellings).
NO_CHECKPOINT = ("", "None", "none", "Use same checkpoint")
TI_KEY = "TI hashes"


def named_checkpoint(value: str | None) -> str | None:
    """The checkpoint a field names, or None for unset / "None" / "Use same checkpoint"."""
    if value is None or value.strip() in NO_CHECKPOINT:
        return None
    return value.strip()


@dataclass(frozen=True)
class Checkpoint:
    """Another checkpoint a run may switch to."""

    title: str  # A1111's short title "name [hash]", what the infotext says
    load: Callable[[], Any]  # makes it the active model and returns it


@dataclass(frozen=True)
class OtherModels:
    """What a run needs to switch models: the hires checkpoint, the refiner, a loader for
    the run's own model (to return to it after a switch), and the embeddings for a model
    (None: the run's embeddings serve every model whose text encoders have the same widths)."""

    hires: Checkpoint | None = None
    refiner: Checkpoint | None = None
    reload: Callable[[], Any] | None = None
    embeddings_for: Callable[[Any], EmbeddingSet | None] | None = None


class ActiveModel:
    """The model in use, prepared for the run (padding, networks, prompt encoder)."""

    def __init__(
        self,
        model: Any,
        *,
        tiling: bool = False,
        encoder_options: Mapping[str, Any] | None = None,
        embeddings_for: Callable[[Any], EmbeddingSet | None] | None = None,
    ) -> None:
        self.model = model
        self.tiling = tiling
        self.encoder_options = dict(encoder_options or {})
        self.embeddings_for = embeddings_for
        self.networks: tuple[AppliedNetwork, ...] = ()
        self.encoder: PromptEncoder
        self._padding = CircularPadding()
        self._used: UsedEmbeddings | None = None
        self._ti_entries: dict[str, None] = {}  # "name: hash" of every model's used TIs
        self._prepare()

    def _prepare(self) -> None:
        """Padding, networks and encoder for `self.model` (restored again on an error)."""
        try:
            if self.tiling:
                self._padding.apply(self.model.unet, self.model.vae)
            network_patch(self.model).apply(self.networks)
            embeddings = self.embeddings_for(self.model) if self.embeddings_for else None
            self._used = embeddings.tracked() if embeddings is not None else None
            self.encoder = PromptEncoder.from_model(
                self.model, embeddings=self._used, **self.encoder_options
            )
        except BaseException:
            self.release()
            raise

    def use_networks(self, networks: Sequence[AppliedNetwork]) -> None:
        """Make `networks` the active LoRA set (on this model and any it switches to)."""
        self.networks = tuple(networks)
        network_patch(self.model).apply(self.networks)

    def switch(
        self, load: Callable[[], Any], networks: Sequence[AppliedNetwork] | None = None
    ) -> bool:
        """Make `load()`'s model the active one; False when it already is. `networks`:
        the LoRA set for the new model (default: the current set)."""
        if networks is not None:
            self.networks = tuple(networks)
        model = load()
        if model is self.model:
            network_patch(self.model).apply(self.networks)  # nothing when already applied
            return False
        self.release()
        self.model = model
        self._prepare()
        return True

    def release(self) -> None:
        """The active model as loaded again: weights, padding modes; its TIs remembered."""
        try:
            network_patch(self.model).remove()
        finally:
            self._padding.restore()
            self._collect_ti()

    def _collect_ti(self) -> None:
        if self._used is not None:
            text = self._used.infotext().get(TI_KEY, "")
            self._ti_entries.update(dict.fromkeys(e for e in text.split(", ") if e))

    def ti_infotext(self) -> dict[str, str]:
        """{"TI hashes": ...} over every model of the run so far, or {}."""
        self._collect_ti()
        return {TI_KEY: ", ".join(self._ti_entries)} if self._ti_entries else {}

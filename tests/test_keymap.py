"""Bindings have ids, no two active bindings share a key, and users remap them by id."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from sdtui.keymap import (
    ALL_KEYS,
    APP_KEYS,
    TXT2IMG_KEYS,
    KeymapError,
    clashes,
    load_keymap,
    split_keys,
)


def test_every_binding_has_a_unique_id() -> None:
    ids = [spec.id for spec in ALL_KEYS]
    assert len(ids) == len(set(ids))
    assert all(spec.id.count(".") >= 1 for spec in ALL_KEYS)


def test_default_keys_do_not_clash() -> None:
    assert clashes() == []


def test_a_remapping_onto_a_used_key_is_a_clash() -> None:
    assert clashes({"txt2img.skip": "f5"}) == ["f5: txt2img.generate and txt2img.skip"]


def test_screen_actions_avoid_keys_text_fields_take() -> None:
    """Generate, interrupt, ... must work while the prompt has focus."""
    taken = {
        key
        for widget in (TextArea, Input)
        for binding in widget.BINDINGS
        for key in split_keys(binding.key if hasattr(binding, "key") else binding[0])
    }
    for spec in APP_KEYS + TXT2IMG_KEYS:
        assert not set(split_keys(spec.keys)) & taken, spec.id


def test_generate_has_keys_every_terminal_sends() -> None:
    generate = next(spec for spec in TXT2IMG_KEYS if spec.id == "txt2img.generate")
    assert {"f5", "ctrl+g"} <= set(split_keys(generate.keys))


def test_load_keymap(tmp_path) -> None:
    path = tmp_path / "keymap.yaml"
    assert load_keymap(path) == {}
    path.write_text("txt2img.generate: f9,ctrl+g\n")
    assert load_keymap(path) == {"txt2img.generate": "f9,ctrl+g"}
    path.write_text("txt2img.generat: f9\n")
    with pytest.raises(KeymapError, match=r"unknown binding ids txt2img\.generat"):
        load_keymap(path)
    path.write_text("[not: a mapping\n")
    with pytest.raises(KeymapError, match="not a readable YAML"):
        load_keymap(path)

"""styles.csv: A1111's format, application and extraction."""

from __future__ import annotations

import pytest

from sdtui.services.styles import Style, StyleLibrary, apply_style_text


def library() -> StyleLibrary:
    return StyleLibrary(
        [
            Style("Cinematic", "cinematic still {prompt}, film grain", "cartoon"),
            Style("Sharp", "sharp focus, 8k", ""),
        ]
    )


def test_apply_with_placeholder_and_append() -> None:
    assert apply_style_text("art of {prompt}!", "a cat") == "art of a cat!"
    assert apply_style_text("sharp", "a cat") == "a cat, sharp"
    assert apply_style_text("sharp", "") == "sharp"
    prompt, negative = library().apply(["Cinematic", "Sharp"], "a cat", "ugly")
    assert prompt == "cinematic still a cat, film grain, sharp focus, 8k"
    assert negative == "ugly, cartoon"


def test_extract_reverses_apply() -> None:
    styles = library()
    prompt, negative = styles.apply(["Cinematic", "Sharp"], "a cat", "ugly")
    assert styles.extract_styles(prompt, negative) == (["Cinematic", "Sharp"], "a cat", "ugly")
    assert styles.extract_styles("a dog", "") == ([], "a dog", "")


def test_csv_round_trip_and_old_format(tmp_path) -> None:
    path = tmp_path / "styles.csv"
    library().save(path)
    assert path.read_text().splitlines()[0] == "name,prompt,negative_prompt"
    assert StyleLibrary.load(path).styles == library().styles
    old = tmp_path / "old.csv"
    old.write_text('name,text\nMoody,"dark, moody {prompt}"\n')
    assert StyleLibrary.load(old).get("Moody").prompt == "dark, moody {prompt}"
    assert StyleLibrary.load(tmp_path / "missing.csv").styles == {}


def test_unknown_style_lists_known() -> None:
    with pytest.raises(KeyError, match="unknown style 'Nope'; known: Cinematic, Sharp"):
        library().apply(["Nope"], "", "")

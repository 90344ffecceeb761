"""Prompt styles in A1111's `styles.csv` (columns name, prompt, negative_prompt).

A style's text containing `{prompt}` wraps the prompt; otherwise it is appended with ", ".
`extract_styles` recovers applied styles from a pasted prompt, as A1111's "infotext
styles" option does. The old two-column `name,text` format is read too. Saving is atomic
and keeps the file readable by A1111.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER = "{prompt}"
FIELDS = ("name", "prompt", "negative_prompt")


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str = ""
    negative_prompt: str = ""


def apply_style_text(style_text: str, prompt: str) -> str:
    if PLACEHOLDER in style_text:
        return style_text.replace(PLACEHOLDER, prompt)
    return ", ".join(part for part in (prompt.strip(), style_text.strip()) if part)


def _strip_style_text(style_text: str, prompt: str) -> tuple[bool, str]:
    stripped_prompt, stripped_style = prompt.strip(), style_text.strip()
    if PLACEHOLDER in stripped_style:
        left, _, right = stripped_style.partition(PLACEHOLDER)
        if stripped_prompt.startswith(left) and stripped_prompt.endswith(right):
            return True, stripped_prompt[len(left) : len(stripped_prompt) - len(right)]
        return False, prompt
    if stripped_prompt.endswith(stripped_style):
        rest = stripped_prompt[: len(stripped_prompt) - len(stripped_style)]
        return True, rest.removesuffix(", ")
    return False, prompt


class StyleLibrary:
    def __init__(self, styles: Iterable[Style] = ()) -> None:
        self.styles: dict[str, Style] = {style.name: style for style in styles}

    @classmethod
    def load(cls, path: Path) -> StyleLibrary:
        if not path.exists():
            return cls()
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.DictReader(file, skipinitialspace=True)
            styles = []
            for row in reader:
                name = (row.get("name") or "").strip()
                if not name:
                    continue
                text = row.get("prompt", row.get("text")) or ""
                styles.append(Style(name, text, row.get("negative_prompt") or ""))
        return cls(styles)

    def save(self, path: Path) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        for style in self.styles.values():
            writer.writerow(
                {
                    "name": style.name,
                    "prompt": style.prompt,
                    "negative_prompt": style.negative_prompt,
                }
            )
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(buffer.getvalue(), encoding="utf-8")
        os.replace(temporary, path)

    def get(self, name: str) -> Style:
        if name not in self.styles:
            known = ", ".join(self.styles) or "none"
            raise KeyError(f"unknown style {name!r}; known: {known}")
        return self.styles[name]

    def apply(self, names: Iterable[str], prompt: str, negative_prompt: str) -> tuple[str, str]:
        for name in names:
            style = self.get(name)
            prompt = apply_style_text(style.prompt, prompt)
            negative_prompt = apply_style_text(style.negative_prompt, negative_prompt)
        return prompt, negative_prompt

    def extract_styles(self, prompt: str, negative_prompt: str) -> tuple[list[str], str, str]:
        """(style names, prompt without them, negative prompt without them)."""
        found: list[str] = []
        candidates = [s for s in self.styles.values() if s.prompt or s.negative_prompt]
        while True:
            for style in candidates:
                matched, new_prompt = _strip_style_text(style.prompt, prompt)
                if not matched:
                    continue
                matched, new_negative = _strip_style_text(style.negative_prompt, negative_prompt)
                if matched:
                    prompt, negative_prompt = new_prompt, new_negative
                    candidates.remove(style)
                    found.append(style.name)
                    break
            else:
                return list(reversed(found)), prompt, negative_prompt

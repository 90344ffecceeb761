"""Textual widgets of sdtui (no torch imports: the first frame paints before torch loads)."""

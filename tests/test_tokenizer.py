"""The offline CLIP tokenizer against open_clip's and transformers' tokenizers as oracles."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdtui.models import tokenizer as tokmod
from sdtui.models.tokenizer import (
    BOS_ID,
    EOS_ID,
    VOCAB_FILENAME,
    VOCAB_SIZE,
    ClipPad,
    ClipTokenizer,
    VocabFileNotFoundError,
    get_tokenizer,
)
from sdtui.models.tokenizer_hf import HF_TOKENIZER_FILES, write_hf_tokenizer_files

CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]

# Varied text both reference tokenizers treat alike (no HTML entities, no text ftfy rewrites,
# no special-token strings: see the tests below for where they differ).
FIXED_TEXTS = [
    "",
    "   ",
    "a photo of a cat",
    "A Photo OF a CAT!!!",
    "masterpiece, best quality, (ultra detailed:1.2), [red|blue] hair, <lora:add_detail:0.8>",
    "((extremely)) [[subtle]] {curly} (word:1.2) BREAK next chunk",
    "it's they're we've I'm you'll he'd don't",
    "numbers 1234567890 and 3.14159, 1e-5, 50%",
    "naïve café résumé über straße Ærøskøbing",
    "日本語のテキスト 中文 한국어 русский текст ελληνικά עברית العربية",
    "emoji 😀🎨🐱‍👤 👍🏽 ❤️ 🇯🇵",
    "tabs\tand\nnewlines\r\n  and   many    spaces",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa zzzzzzzz qqqqqqq",
    "snake_case kebab-case CamelCase dotted.name path/to/file.png",
    "!@#$%^*()_+-=[]{};:,./?~`|\\\"'",
    "hyper-realistic 8k uhd, dslr, soft lighting, film grain, Fujifilm XT3",
]

word = st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True)
punctuation = st.sampled_from(list(",.;:!?'\"()[]{}<>|/\\-_+=*&#%$@^~`"))
digits = st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True)
unicode_letters = st.text(st.characters(categories=["L", "M"]), min_size=1, max_size=8)
emoji = st.sampled_from(["😀", "🎨", "🐱", "👍🏽", "❤️", "🇯🇵", "👩‍🔬", "✨", "🔥"])
spaces = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u3000", "\u00a0", ""])
a1111 = st.one_of(
    st.builds(lambda w, x: f"({w}:{x})", word, digits),
    st.builds(lambda a, b: f"[{a}|{b}]", word, word),
    st.builds(lambda w, x: f"<lora:{w}:{x}>", word, digits),
    st.builds(lambda a, b, n: f"[{a}:{b}:{n}]", word, word, digits),
    st.just("BREAK"),
    st.just("AND"),
)
piece = st.one_of(word, punctuation, digits, unicode_letters, emoji, spaces, a1111)
prompts = st.one_of(st.lists(piece, max_size=25).map("".join), st.text(max_size=40))

# Text transformers' CLIPTokenizer also handles as CLIP does: ftfy leaves it alone and it
# contains no HTML entity ('&' excluded) and no special-token strings.
hf_safe_prompts = st.lists(
    st.one_of(word, digits, a1111, st.sampled_from(list(",.;:!?'\"()[]{}<>|/-_+=*#%$@^~` \n"))),
    max_size=25,
).map("".join)


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    return get_tokenizer()


@pytest.fixture(scope="module")
def open_clip_tokenizer():
    open_clip = pytest.importorskip("open_clip")
    return open_clip.tokenizer.SimpleTokenizer()


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory) -> dict[ClipPad, Path]:
    root = tmp_path_factory.mktemp("hf_tokenizers")
    dirs = {pad: root / pad.value for pad in ClipPad}
    for pad, directory in dirs.items():
        write_hf_tokenizer_files(directory, pad=pad)
    return dirs


@pytest.fixture(scope="module")
def hf_tokenizers(hf_dirs):
    transformers = pytest.importorskip("transformers")
    load = transformers.CLIPTokenizer.from_pretrained
    return {pad: load(str(directory), local_files_only=True) for pad, directory in hf_dirs.items()}


def test_a_photo_of_a_cat(tok):
    assert tok.tokenize("a photo of a cat", context_length=7) == CAT_IDS
    assert tok.encode("a photo of a cat") == CAT_IDS[1:-1]


def test_vocabulary_layout(tok):
    assert len(tok.encoder) == len(tok.tokens) == VOCAB_SIZE == 49408
    assert (tok.bos_id, tok.eos_id) == (49406, 49407)
    assert tok.tokens[BOS_ID] == "<|startoftext|>" and tok.tokens[EOS_ID] == "<|endoftext|>"
    assert tok.tokens[0] == "!" and tok.tokens[256] == "!</w>"
    assert tok.tokens[512] == "in"  # the first merge line is "i n"


@settings(deadline=None, max_examples=200)
@given(text=prompts)
def test_encode_matches_open_clip(tok, open_clip_tokenizer, text):
    assert tok.encode(text) == open_clip_tokenizer.encode(text)


@pytest.mark.parametrize("text", FIXED_TEXTS)
def test_encode_matches_open_clip_fixed(tok, open_clip_tokenizer, text):
    assert tok.encode(text) == open_clip_tokenizer.encode(text)


def test_hf_files_written(hf_dirs):
    for pad, directory in hf_dirs.items():
        assert sorted(p.name for p in directory.iterdir()) == sorted(HF_TOKENIZER_FILES)
        config = json.loads((directory / "tokenizer_config.json").read_text())
        assert config["pad_token"] == pad.pad_token
        assert config["model_max_length"] == 77
    merges = (hf_dirs[ClipPad.EOS] / "merges.txt").read_text().splitlines()
    assert merges[0].startswith("#version") and merges[1] == "i n" and len(merges) == 48895


@pytest.mark.parametrize("text", FIXED_TEXTS)
def test_matches_transformers_fixed(tok, hf_tokenizers, text):
    for pad, hf in hf_tokenizers.items():
        if pad is ClipPad.ZERO and "!" in text:
            continue  # see test_hf_zero_pad_splits_exclamation_marks
        expected = hf(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
        assert tok.tokenize(text, pad=pad) == expected


def test_hf_zero_pad_splits_exclamation_marks(tok, open_clip_tokenizer, hf_tokenizers):
    """With pad token "!" (SD2 / SDXL tokenizer_2 configs) transformers treats "!" as a special
    token and never merges it; open_clip (which SD2 / bigG were trained with) and we do."""
    text = "wow !!!"
    ours = tok.encode(text)
    assert ours == open_clip_tokenizer.encode(text) == [2781, 995]
    assert hf_tokenizers[ClipPad.EOS](text)["input_ids"][1:-1] == ours
    assert hf_tokenizers[ClipPad.ZERO](text)["input_ids"][1:-1] == [2781, 0, 0, 0]


@settings(deadline=None, max_examples=100)
@given(text=hf_safe_prompts)
def test_encode_matches_transformers(tok, hf_tokenizers, text):
    hf = hf_tokenizers[ClipPad.EOS]
    assert [BOS_ID, *tok.encode(text), EOS_ID] == hf(text)["input_ids"]


def test_hf_pad_tokens_per_family(hf_tokenizers):
    assert hf_tokenizers[ClipPad.EOS].pad_token == "<|endoftext|>"
    assert hf_tokenizers[ClipPad.EOS].pad_token_id == 49407
    assert hf_tokenizers[ClipPad.ZERO].pad_token == "!"
    assert hf_tokenizers[ClipPad.ZERO].pad_token_id == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [("fish &amp; chips", "html entity"), ("“quoted”", "ftfy uncurls quotes"), ("ﬁne", "ligature")],
)
def test_known_differences_from_transformers(tok, open_clip_tokenizer, hf_tokenizers, text, reason):
    """open_clip cleans text (ftfy, html.unescape); transformers' CLIPTokenizer does not."""
    hf_ids = hf_tokenizers[ClipPad.EOS](text)["input_ids"][1:-1]
    assert tok.encode(text) == open_clip_tokenizer.encode(text) != hf_ids, reason


def test_special_token_text_is_plain_text(tok, open_clip_tokenizer):
    text = "a <|endoftext|> b"
    assert tok.encode(text) == open_clip_tokenizer.encode(text)
    assert EOS_ID not in tok.encode(text)


def test_padding_per_family(tok):
    eos = tok.tokenize("a photo of a cat", pad=ClipPad.EOS)
    zero = tok.tokenize("a photo of a cat", pad=ClipPad.ZERO)
    assert len(eos) == len(zero) == 77
    assert eos == CAT_IDS + [49407] * 70
    assert zero == CAT_IDS + [0] * 70
    assert tok.tokenize("a cat", context_length=6, pad=5) == [49406, 320, 2368, 49407, 5, 5]
    assert tok.tokenize("", context_length=3) == [49406, 49407, 49407]


def test_truncation_keeps_eos(tok):
    text = "one two three " * 40
    ids = tok.tokenize(text, pad=ClipPad.ZERO)
    full = tok.encode(text)
    assert len(ids) == 77 and ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert ids[1:-1] == full[:75]
    assert 0 not in ids
    exact = tok.tokenize(" ".join(["cat"] * 75), pad=ClipPad.ZERO)
    assert exact == [BOS_ID, *[2368] * 75, EOS_ID]


def test_no_truncation_raises(tok):
    with pytest.raises(ValueError, match="longer than context_length 77"):
        tok.tokenize("cat " * 76, truncate=False)
    assert len(tok.tokenize("cat " * 75, truncate=False)) == 77


def test_bad_arguments(tok):
    with pytest.raises(ValueError, match="context_length"):
        tok.tokenize("x", context_length=1)
    with pytest.raises(ValueError, match="pad id 49408"):
        tok.tokenize("x", pad=49408)
    with pytest.raises(ValueError, match="token id -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match=r"ClipPad\.EOS, ClipPad\.ZERO"):
        write_hf_tokenizer_files("/nonexistent", pad=0)  # type: ignore[arg-type]


@settings(deadline=None, max_examples=100)
@given(words=st.lists(st.from_regex(r"[a-z]{1,15}", fullmatch=True), min_size=1, max_size=20))
def test_decode_round_trip(tok, words):
    text = " ".join(words)
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.tokenize(text, context_length=200)) == text


def test_decode_specials_and_unicode(tok):
    assert tok.decode(CAT_IDS, skip_special_tokens=False) == (
        "<|startoftext|> a photo of a cat <|endoftext|>"
    )
    assert tok.decode(tok.encode("naïve 日本 😀")) == "naïve 日本 😀"


def test_missing_vocab_names_where_it_looked(tmp_path, monkeypatch):
    fake_spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(tokmod.importlib.util, "find_spec", lambda name: fake_spec)
    with pytest.raises(VocabFileNotFoundError, match="looked in") as info:
        ClipTokenizer()
    assert str(tmp_path / VOCAB_FILENAME) in str(info.value)
    monkeypatch.setattr(tokmod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(VocabFileNotFoundError, match="open_clip is not installed"):
        ClipTokenizer()


def test_explicit_missing_path(tmp_path):
    missing = tmp_path / "nope.txt.gz"
    with pytest.raises(VocabFileNotFoundError, match=r"nope\.txt\.gz"):
        ClipTokenizer(vocab_path=missing)


def test_shared_instance_and_no_torch_import():
    assert get_tokenizer() is get_tokenizer()
    code = (
        "import sys\n"
        "from sdtui.models.tokenizer import get_tokenizer\n"
        "from sdtui.models.tokenizer_hf import write_hf_tokenizer_files\n"
        "assert get_tokenizer().encode('a photo of a cat') == [320, 1125, 539, 320, 2368]\n"
        "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules, 'heavy import'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

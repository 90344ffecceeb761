"""LoRA networks as weight patches on tiny models: every key style and algorithm against
deltas computed here by hand (einsum / loops), exact restore, multipliers, reports."""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from sdtui.models.networks import (
    AppliedNetwork,
    match_network,
    network_from_tensors,
    network_patch,
)
from sdtui.models.networks.patch import NetworkPatch
from tests.tiny_models import build_tiny_components

SD1_Q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
SD1_CONV = "down_blocks.0.resnets.0.conv1"
TE_Q = "encoder.layers.0.self_attn.q_proj"
KOHYA_Q = "lora_unet_" + SD1_Q.replace(".", "_")
KOHYA_TE_Q = "lora_te_text_model_" + TE_Q.replace(".", "_")


@cache
def model(family: str) -> SimpleNamespace:
    components = build_tiny_components(family, seed=3)
    components.setdefault("text_encoder_2", None)
    return SimpleNamespace(**components)


def module(m: SimpleNamespace, component: str, path: str) -> torch.nn.Module:
    return getattr(m, component).get_submodule(path)


def snapshot(m: SimpleNamespace) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": tensor.clone()
        for name in ("unet", "text_encoder", "text_encoder_2")
        if getattr(m, name, None) is not None
        for key, tensor in getattr(m, name).state_dict().items()
    }


def assert_restored(m: SimpleNamespace, before: dict[str, torch.Tensor]) -> None:
    after = snapshot(m)
    assert after.keys() == before.keys()
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    assert changed == []


def rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 0.3


@pytest.fixture
def fresh():
    """A patch on the cached sd1 model that must leave every weight as it found it."""
    m = model("sd1")
    before = snapshot(m)
    patch = NetworkPatch(m)
    yield m, patch
    patch.remove()
    assert_restored(m, before)


def applied_change(patch: NetworkPatch, target: torch.nn.Module, networks) -> torch.Tensor:
    original = target.weight.detach().clone()
    patch.apply(networks)
    return target.weight.detach() - original


# ---------------------------------------------------------------------------- algorithms


def test_kohya_linear_lora_is_up_down_times_alpha_over_rank(fresh) -> None:
    m, patch = fresh
    up, down = rand(16, 4, seed=1), rand(4, 16, seed=2)
    name = "lora_unet_" + SD1_Q.replace(".", "_")
    net = network_from_tensors(
        "n",
        {
            f"{name}.lora_up.weight": up,
            f"{name}.lora_down.weight": down,
            f"{name}.alpha": torch.tensor(2.0),
        },
    )
    expected = sum(torch.outer(up[:, r], down[r, :]) for r in range(4)) * (2.0 / 4) * 0.7
    change = applied_change(patch, module(m, "unet", SD1_Q), [AppliedNetwork(net, 1.0, 0.7)])
    torch.testing.assert_close(change, expected, rtol=1e-5, atol=1e-6)


def test_missing_alpha_means_scale_one_and_dyn_keeps_first_ranks(fresh) -> None:
    m, patch = fresh
    up, down = rand(16, 3, seed=3), rand(3, 16, seed=4)
    name = "lora_unet_" + SD1_Q.replace(".", "_")
    net = network_from_tensors(
        "n", {f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down}
    )
    target = module(m, "unet", SD1_Q)
    change = applied_change(patch, target, [AppliedNetwork(net)])
    torch.testing.assert_close(change, torch.einsum("or,ri->oi", up, down), rtol=1e-5, atol=1e-6)
    patch.remove()
    change = applied_change(patch, target, [AppliedNetwork(net, dyn=1)])
    torch.testing.assert_close(change, torch.outer(up[:, 0], down[0]), rtol=1e-5, atol=1e-6)


def test_locon_3x3_conv_and_tucker_mid(fresh) -> None:
    m, patch = fresh
    target = module(m, "unet", SD1_CONV)  # Conv2d(16, 16, 3)
    name = "lora_unet_input_blocks_1_0_in_layers_2"  # the same conv under its LDM name
    up, down = rand(16, 2, 1, 1, seed=5), rand(2, 16, 3, 3, seed=6)
    net = network_from_tensors(
        "n",
        {
            f"{name}.lora_up.weight": up,
            f"{name}.lora_down.weight": down,
            f"{name}.alpha": torch.tensor(1.0),
        },
    )
    expected = torch.einsum("or,rihw->oihw", up[:, :, 0, 0], down) * 0.5
    torch.testing.assert_close(
        applied_change(patch, target, [AppliedNetwork(net)]), expected, rtol=1e-5, atol=1e-6
    )
    patch.remove()
    up, mid, down = rand(16, 2, 1, 1, seed=7), rand(2, 2, 3, 3, seed=8), rand(2, 16, 1, 1, seed=9)
    tucker = network_from_tensors(
        "t",
        {
            f"{name}.lora_up.weight": up,
            f"{name}.lora_mid.weight": mid,
            f"{name}.lora_down.weight": down,
        },
    )
    expected = torch.zeros(16, 16, 3, 3)
    for p in range(2):
        for q in range(2):
            expected += (
                up[:, p, 0, 0][:, None, None, None]
                * mid[p, q][None, None]
                * down[q, :, 0, 0][None, :, None, None]
            )
    torch.testing.assert_close(
        applied_change(patch, target, [AppliedNetwork(tucker)]), expected, rtol=1e-5, atol=1e-6
    )


def test_loha_with_and_without_tucker_cores(fresh) -> None:
    m, patch = fresh
    name = "lora_te_text_model_" + TE_Q.replace(".", "_")
    w = {k: rand(*s, seed=i) for i, (k, s) in enumerate(
        [("hada_w1_a", (32, 4)), ("hada_w1_b", (4, 32)), ("hada_w2_a", (32, 4)),
         ("hada_w2_b", (4, 32))], start=20)}  # fmt: skip
    net = network_from_tensors(
        "h", {f"{name}.{k}": v for k, v in w.items()} | {f"{name}.alpha": torch.tensor(8.0)}
    )
    first = torch.einsum("or,ri->oi", w["hada_w1_a"], w["hada_w1_b"])
    second = torch.einsum("or,ri->oi", w["hada_w2_a"], w["hada_w2_b"])
    target = module(m, "text_encoder", TE_Q)
    change = applied_change(patch, target, [AppliedNetwork(net, te=0.5, unet=3.0)])
    torch.testing.assert_close(change, first * second * 2.0 * 0.5, rtol=1e-5, atol=1e-6)
    patch.remove()

    conv = module(m, "unet", SD1_CONV)
    cname = "lora_unet_" + SD1_CONV.replace(".", "_")
    shapes = {"_a": (2, 16), "_b": (2, 16)}
    t = {
        f"hada_w{i}{s}": rand(*shape, seed=30 + i * 3 + j)
        for i in (1, 2)
        for j, (s, shape) in enumerate(shapes.items())
    }
    t |= {f"hada_t{i}": rand(2, 2, 3, 3, seed=40 + i) for i in (1, 2)}
    cp = network_from_tensors("c", {f"{cname}.{k}": v for k, v in t.items()})

    def rebuild(core: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(16, 16, 3, 3)
        for p in range(2):
            for q in range(2):
                out += (
                    core[p, q][None, None] * a[p][:, None, None, None] * b[q][None, :, None, None]
                )
        return out

    expected = rebuild(t["hada_t1"], t["hada_w1_a"], t["hada_w1_b"]) * rebuild(
        t["hada_t2"], t["hada_w2_a"], t["hada_w2_b"]
    )
    torch.testing.assert_close(
        applied_change(patch, conv, [AppliedNetwork(cp)]), expected, rtol=1e-5, atol=1e-6
    )


def kron_by_hand(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    rows, cols = w1.shape[0] * w2.shape[0], w1.shape[1] * w2.shape[1]
    out = torch.zeros(rows, cols, *w2.shape[2:])
    for a in range(w1.shape[0]):
        for b in range(w1.shape[1]):
            for c in range(w2.shape[0]):
                for d in range(w2.shape[1]):
                    out[a * w2.shape[0] + c, b * w2.shape[1] + d] = w1[a, b] * w2[c, d]
    return out


def test_lokr_scales_only_when_factorised(fresh) -> None:
    m, patch = fresh
    target = module(m, "unet", SD1_Q)  # 16 x 16 = kron(4x2, 4x8)
    name = "lora_unet_" + SD1_Q.replace(".", "_")
    w1, w2 = rand(4, 2, seed=40), rand(4, 8, seed=41)
    whole = network_from_tensors(
        "k",
        {f"{name}.lokr_w1": w1, f"{name}.lokr_w2": w2, f"{name}.alpha": torch.tensor(4.0)},
    )
    change = applied_change(patch, target, [AppliedNetwork(whole)])
    torch.testing.assert_close(change, kron_by_hand(w1, w2), rtol=1e-5, atol=1e-6)
    patch.remove()
    w2a, w2b = rand(4, 2, seed=42), rand(2, 8, seed=43)
    factored = network_from_tensors(
        "f",
        {
            f"{name}.lokr_w1": w1,
            f"{name}.lokr_w2_a": w2a,
            f"{name}.lokr_w2_b": w2b,
            f"{name}.alpha": torch.tensor(4.0),
        },
    )
    change = applied_change(patch, target, [AppliedNetwork(factored)])
    expected = kron_by_hand(w1, torch.einsum("cr,rd->cd", w2a, w2b)) * (4.0 / 2)
    torch.testing.assert_close(change, expected, rtol=1e-5, atol=1e-6)
    patch.remove()
    conv = module(m, "unet", SD1_CONV)  # [16, 16, 3, 3] = kron(2x4, 8x4x3x3)
    cname = "lora_unet_" + SD1_CONV.replace(".", "_")
    c1, c2 = rand(2, 4, seed=44), rand(8, 4, 3, 3, seed=45)
    kconv = network_from_tensors("kc", {f"{cname}.lokr_w1": c1, f"{cname}.lokr_w2": c2})
    torch.testing.assert_close(
        applied_change(patch, conv, [AppliedNetwork(kconv)]),
        kron_by_hand(c1, c2),
        rtol=1e-5,
        atol=1e-6,
    )


def test_full_diff_changes_weight_and_bias(fresh) -> None:
    m, patch = fresh
    target = module(m, "unet", "conv_in")
    diff, diff_b = rand(*target.weight.shape, seed=50), rand(16, seed=51)
    net = network_from_tensors(
        "d", {"lora_unet_conv_in.diff": diff, "lora_unet_conv_in.diff_b": diff_b}
    )
    bias = target.bias.detach().clone()
    change = applied_change(patch, target, [AppliedNetwork(net, te=9.0, unet=0.25)])
    torch.testing.assert_close(change, diff * 0.25, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(target.bias.detach() - bias, diff_b * 0.25, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- key styles

KOHYA = ("lora_up", "lora_down")
PEFT = ("lora_B", "lora_A")
DIFFUSERS = ("up", "down")
# style -> (component, module path, key pattern, (up, down) spellings)
LINEAR_STYLES = {
    "kohya diffusers": ("unet", SD1_Q, KOHYA_Q + ".{}.weight", KOHYA),
    "kohya LDM": (
        "unet",
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
        "lora_unet_output_blocks_2_1_transformer_blocks_0_attn2_to_k.{}.weight",
        KOHYA,
    ),
    "kohya te": ("text_encoder", TE_Q, KOHYA_TE_Q + ".{}.weight", KOHYA),
    "peft unet": ("unet", SD1_Q, f"unet.{SD1_Q}.{{}}.weight", PEFT),
    "peft te": ("text_encoder", TE_Q, f"text_encoder.text_model.{TE_Q}.{{}}.weight", PEFT),
    "diffusers lora.up": ("unet", SD1_Q, f"unet.{SD1_Q}.lora.{{}}.weight", DIFFUSERS),
    "processor": (
        "unet",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.{}.weight",
        DIFFUSERS,
    ),
    "te processor": (
        "text_encoder",
        "encoder.layers.1.self_attn.v_proj",
        "text_encoder.text_model.encoder.layers.1.self_attn.to_v_lora.{}.weight",
        DIFFUSERS,
    ),
    "te lora_linear_layer": (
        "text_encoder",
        TE_Q,
        f"text_encoder.text_model.{TE_Q}.lora_linear_layer.{{}}.weight",
        DIFFUSERS,
    ),
}  # fmt: skip


@pytest.mark.parametrize("style", LINEAR_STYLES)
def test_each_key_style_reaches_its_module(fresh, style: str) -> None:
    m, patch = fresh
    component, path, pattern, (up_name, down_name) = LINEAR_STYLES[style]
    target = module(m, component, path)
    out, inp = target.weight.shape
    up, down = rand(out, 2, seed=60), rand(2, inp, seed=61)
    net = network_from_tensors("s", {pattern.format(up_name): up, pattern.format(down_name): down})
    match = match_network(net, m)
    assert [(p.component, p.path) for p in match.patches] == [(component, path)]
    assert match.unmatched == [] and match.unsupported == {}
    change = applied_change(patch, target, [AppliedNetwork(net, te=2.0, unet=-1.0)])
    multiplier = 2.0 if component == "text_encoder" else -1.0
    expected = multiplier * torch.einsum("or,ri->oi", up, down)
    torch.testing.assert_close(change, expected, rtol=1e-5, atol=1e-6)


def test_sdxl_te1_te2_and_ldm_unet_names() -> None:
    m = model("sdxl")
    before = snapshot(m)
    q2 = "text_model.encoder.layers.1.self_attn.k_proj"
    targets = {
        "lora_te1_text_model_encoder_layers_0_mlp_fc1": (
            "text_encoder", "encoder.layers.0.mlp.fc1"),
        "lora_te2_" + q2.replace(".", "_"): ("text_encoder_2", q2),
        "lora_te2_text_projection": ("text_encoder_2", "text_projection"),
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q": (
            "unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"),
        "lora_unet_middle_block_1_proj_in": ("unet", "mid_block.attentions.0.proj_in"),
        "lora_unet_output_blocks_0_1_transformer_blocks_0_ff_net_2": (
            "unet", "up_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"),
    }  # fmt: skip
    tensors = {}
    for index, (name, (component, path)) in enumerate(targets.items()):
        out, inp = module(m, component, path).weight.shape
        tensors[f"{name}.lora_up.weight"] = rand(out, 2, seed=70 + index)
        tensors[f"{name}.lora_down.weight"] = rand(2, inp, seed=80 + index)
    match = match_network(network_from_tensors("xl", tensors), m)
    assert sorted((p.component, p.path) for p in match.patches) == sorted(targets.values())
    assert match.unmatched == []
    patch = NetworkPatch(m)
    with patch.applied([AppliedNetwork(network_from_tensors("xl", tensors), te=0.5, unet=1.5)]):
        for name, (component, path) in targets.items():
            weight = module(m, component, path).weight
            expected = before[f"{component}.{path}.weight"] + (
                0.5 if component.startswith("text") else 1.5
            ) * torch.einsum("or,ri->oi", tensors[f"{name}.lora_up.weight"],
                             tensors[f"{name}.lora_down.weight"])  # fmt: skip
            torch.testing.assert_close(weight.detach(), expected, rtol=1e-5, atol=1e-6)
    assert_restored(m, before)


# ---------------------------------------------------------------------------- reports


def test_unmatched_and_unsupported_keys_are_reported(fresh) -> None:
    m, _ = fresh
    q = "lora_unet_" + SD1_Q.replace(".", "_")
    tensors = {
        f"{q}.lora_up.weight": rand(16, 2, seed=1),
        f"{q}.lora_down.weight": rand(2, 16, seed=2),
        "lora_unet_no_such_block_to_q.lora_up.weight": rand(4, 2, seed=3),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": rand(4, 2, seed=4),
        "some.random.tensor": rand(3, seed=5),
        "lora_unet_conv_in.lora_up.weight": rand(16, 2, seed=6),
        "lora_unet_conv_in.lora_down.weight": rand(2, 4, 3, 3, seed=7),
        "lora_unet_conv_in.dora_scale": rand(16, 1, 1, 1, seed=8),
        "lora_unet_conv_out.lora_up.weight": rand(5, 2, seed=9),  # wrong shape
        "lora_unet_conv_out.lora_down.weight": rand(2, 16, seed=10),
    }
    match = match_network(network_from_tensors("r", tensors), m)
    assert [p.path for p in match.patches] == [SD1_Q]
    assert sorted(match.unmatched) == sorted(
        [
            "lora_unet_no_such_block_to_q.lora_up.weight",
            "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
            "some.random.tensor",
        ]
    )
    assert set(match.unsupported) == {
        "lora_unet_conv_in.lora_up.weight",
        "lora_unet_conv_in.lora_down.weight",
        "lora_unet_conv_in.dora_scale",
        "lora_unet_conv_out.lora_up.weight",
        "lora_unet_conv_out.lora_down.weight",
    }
    assert "DoRA" in match.unsupported["lora_unet_conv_in.dora_scale"]
    assert "shape" in match.unsupported["lora_unet_conv_out.lora_up.weight"]
    summary = match.summary()
    assert "3 keys match no module" in summary and "5 keys not applied" in summary


# ---------------------------------------------------------------------------- the patch


def two_networks() -> tuple[Any, Any, dict[str, torch.Tensor]]:
    """a: LoRA on SD1_Q and TE_Q (no alpha); b: full diffs on the same two modules."""
    q = "lora_unet_" + SD1_Q.replace(".", "_")
    te = "lora_te_text_model_" + TE_Q.replace(".", "_")
    t = {
        "unet_up": rand(16, 2, seed=90),
        "unet_down": rand(2, 16, seed=91),
        "te_up": rand(32, 2, seed=92),
        "te_down": rand(2, 32, seed=93),
        "unet_diff": rand(16, 16, seed=94),
        "te_diff": rand(32, 32, seed=95),
    }
    a = network_from_tensors(
        "a",
        {
            f"{q}.lora_up.weight": t["unet_up"],
            f"{q}.lora_down.weight": t["unet_down"],
            f"{te}.lora_up.weight": t["te_up"],
            f"{te}.lora_down.weight": t["te_down"],
        },
    )
    b = network_from_tensors("b", {f"{q}.diff": t["unet_diff"], f"{te}.diff": t["te_diff"]})
    return a, b, t


def test_multipliers_sum_and_reapply_is_a_no_op_and_a_new_set_restores_first(fresh) -> None:
    m, patch = fresh
    a, b, t = two_networks()
    unet_w, te_w = module(m, "unet", SD1_Q).weight, module(m, "text_encoder", TE_Q).weight
    unet0, te0 = unet_w.detach().clone(), te_w.detach().clone()
    both = [AppliedNetwork(a, te=0.5, unet=2.0), AppliedNetwork(b, te=-1.0, unet=0.25)]
    patch.apply(both)
    lora_unet = torch.einsum("or,ri->oi", t["unet_up"], t["unet_down"])
    lora_te = torch.einsum("or,ri->oi", t["te_up"], t["te_down"])
    expect_unet = unet0 + 2.0 * lora_unet + 0.25 * t["unet_diff"]
    expect_te = te0 + 0.5 * lora_te - t["te_diff"]
    torch.testing.assert_close(unet_w.detach(), expect_unet, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(te_w.detach(), expect_te, rtol=1e-5, atol=1e-6)
    held = unet_w.detach().clone()
    patch.apply(list(both))  # the same set: nothing happens
    assert torch.equal(unet_w.detach(), held) and patch.active == tuple(both)
    patch.apply([AppliedNetwork(b, te=1.0, unet=1.0)])  # a different set: from the originals
    torch.testing.assert_close(unet_w.detach(), unet0 + t["unet_diff"], rtol=1e-5, atol=1e-6)
    patch.apply([])
    assert torch.equal(unet_w.detach(), unet0) and torch.equal(te_w.detach(), te0)
    assert patch.touched == 0


def test_context_manager_restores_after_an_error_and_keeps_parameters(fresh) -> None:
    m, patch = fresh
    a, _, _ = two_networks()
    weight = module(m, "unet", SD1_Q).weight
    original = weight.detach().clone()
    with pytest.raises(RuntimeError, match="boom"), patch.applied([AppliedNetwork(a)]):
        assert not torch.equal(weight.detach(), original)
        raise RuntimeError("boom")
    assert module(m, "unet", SD1_Q).weight is weight  # the same Parameter, values restored
    assert torch.equal(weight.detach(), original)


def test_half_precision_model_is_patched_in_its_dtype_and_restored_bit_exactly() -> None:
    components = build_tiny_components("sd1", seed=5)
    m = SimpleNamespace(
        unet=components["unet"].half(), text_encoder=components["text_encoder"].half()
    )
    before = snapshot(m)
    a, _, t = two_networks()
    patch = network_patch(m)
    assert network_patch(m) is patch
    patch.apply([AppliedNetwork(a, te=1.0, unet=1.0)])
    weight = module(m, "unet", SD1_Q).weight
    assert weight.dtype == torch.float16
    exact = before[f"unet.{SD1_Q}.weight"].float() + torch.einsum(
        "or,ri->oi", t["unet_up"], t["unet_down"]
    )
    torch.testing.assert_close(weight.detach(), exact.half(), rtol=1e-3, atol=1e-3)
    patch.remove()
    assert_restored(m, before)

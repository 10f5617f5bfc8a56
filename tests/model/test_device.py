"""Precision `auto`: bf16 only where the hardware multiplies bf16; weights and scores stay fp32."""

import pytest
import torch

from ssda_model.model import SSDAModel
from ssda_model.train import device as device_module
from ssda_model.train.device import cpu_has_bf16, resolve_precision
from tests.helpers import FAST

pytestmark = pytest.mark.numerics  # rerun with oneDNN and ATen capped at AVX2 (Makefile: test)

CPU = torch.device("cpu")


def test_bf16_units_are_read_from_the_cpu_flags(tmp_path):
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    skylake = tmp_path / "skylake"
    skylake.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n")
    graviton3 = tmp_path / "graviton3"
    graviton3.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")
    assert cpu_has_bf16(zen4, max_isa="") and cpu_has_bf16(graviton3, max_isa="")
    assert not cpu_has_bf16(skylake, max_isa="")
    assert not cpu_has_bf16(tmp_path / "absent", max_isa="")


def test_auto_chooses_fp32_on_a_cpu_without_bf16_units(monkeypatch, small_pair):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    source, target = small_pair
    auto = SSDAModel.fit(source, target, FAST.replace(device="cpu"))
    fp32 = SSDAModel.fit(source, target, FAST.replace(device="cpu", precision="fp32"))
    assert auto.metrics["precision"] == "fp32"
    assert [r["auc"] for r in auto.metrics["repetitions"]] == [r["auc"] for r in fp32.metrics["repetitions"]]


def test_auto_chooses_bf16_on_a_cpu_with_bf16_units_and_keeps_fp32_weights_and_scores(
    monkeypatch, small_pair
):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"
    assert resolve_precision("fp32", CPU) == "fp32"
    source, target = small_pair
    model = SSDAModel.fit(source, target, FAST.replace(device="cpu"))
    assert model.metrics["precision"] == "bf16"
    assert all(
        v.dtype == torch.float32
        for state in model.state_dicts
        for v in state.values()
        if v.is_floating_point()
    )
    assert model.predict(target).obs["ssda_score"].dtype == "float32"


def test_onednn_capped_below_bf16_means_no_bf16_units(tmp_path):
    """`ONEDNN_MAX_CPU_ISA=AVX2` leaves PyTorch an emulated bf16 product ~1,000x slower than fp32."""
    amx = tmp_path / "sapphire_rapids"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_has_bf16(amx, max_isa="") and cpu_has_bf16(amx, max_isa="AVX512_CORE_AMX")
    assert cpu_has_bf16(amx, max_isa="avx512_core_bf16")
    assert not cpu_has_bf16(amx, max_isa="AVX2") and not cpu_has_bf16(amx, max_isa="avx512_core")

"""The GPU path (skipped without CUDA): training runs there, in bf16 under `auto`, and what it
saves is the same fp32 model a CPU loads and scores alike."""

import numpy as np
import pytest
import torch

from ssda_model.model import SSDAModel
from ssda_model.train.competitors import COMPETITORS
from tests.helpers import FAST, assert_members_train_alike, competitor_scores_both_ways

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_auto_trains_on_the_gpu_in_bf16_and_saves_an_fp32_model_the_cpu_scores_alike(tmp_path, small_pair):
    source, target = small_pair
    model = SSDAModel.fit(source, target, FAST)
    assert model.metrics["device"].startswith("cuda")
    assert model.metrics["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert all(
        v.dtype == torch.float32 and v.device.type == "cpu"
        for state in model.state_dicts
        for v in state.values()
        if v.is_floating_point()
    )
    on_gpu = model.predict(target).obs["ssda_score"].to_numpy()
    on_cpu = SSDAModel.load(model.save(tmp_path / "model")).predict(target, device="cpu")
    assert on_cpu.obs["ssda_score"].dtype == "float32"
    assert np.allclose(on_cpu.obs["ssda_score"], on_gpu, atol=1e-4)


@pytest.mark.parametrize("method", ["ssda_prior", "target_only"])
def test_batched_repetitions_on_the_gpu_train_like_one_at_a_time(small_pair, method):
    """cuBLAS's batched and single kernels round differently and Adagrad's first steps carry that
    into the trajectory (as target_only's small batches do on the CPU): close, not equal."""
    config = FAST.replace(method=method, repetitions=3, precision="fp32", device="cuda")
    assert_members_train_alike(small_pair, config)


@pytest.mark.parametrize("method", COMPETITORS)
def test_batched_competitors_on_the_gpu_score_like_one_at_a_time(small_pair, method):
    config = FAST.replace(repetitions=3, precision="fp32", device="cuda")
    _, batched, alone = competitor_scores_both_ways(small_pair, method, torch.device("cuda"), config)
    for b, a in zip(batched, alone, strict=True):
        assert np.corrcoef(b, a)[0, 1] > 0.95

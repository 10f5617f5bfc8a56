"""The latent-space view: UMAP's compiled kernels are kept across processes."""

import os
import subprocess
import sys


def test_umap_kernels_compile_once_and_later_processes_load_them(tmp_path):
    """latent_map runs in a fresh process per step: the second process loads UMAP's neighbour-graph
    kernels from numba's cache instead of compiling them again."""
    code = (
        "import numpy as np; from umap import umap_; "
        "from ssda_model.analysis.latent import umap_2d; "
        "umap_2d(np.random.default_rng(0).normal(size=(60, 8)).astype('float32')); "
        "s = umap_.smooth_knn_dist.stats; print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    (first_hits, first_misses), (second_hits, second_misses) = (
        map(int, run.stdout.split()[-2:]) for run in runs
    )
    assert (first_hits, second_misses) == (0, 0) and first_misses > 0 and second_hits > 0

"""The latent-space view: UMAP's compiled kernels are kept across processes."""

import ast
import subprocess
import sys


def test_umap_kernels_go_through_numbas_disk_cache():
    """Each run of latent_map is a fresh process, and UMAP declares its neighbour-graph kernels
    without `cache=True`: each process compiled them again (about 4 s). After `umap_2d` both
    kernels have a disk cache (numba reports its folder; without one it reports none) and were
    looked up in it. Checked in a fresh process, as a run would be."""
    code = (
        "import numpy as np; from umap import umap_; "
        "from ssda_model.analysis.latent import umap_2d; "
        "umap_2d(np.random.default_rng(0).normal(size=(60, 8)).astype('float32')); "
        "stats = [k.stats for k in (umap_.smooth_knn_dist, umap_.compute_membership_strengths)]; "
        "print([(s.cache_path, sum(s.cache_hits.values()) + sum(s.cache_misses.values())) for s in stats])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    caches = ast.literal_eval(run.stdout.strip().splitlines()[-1])
    assert len(caches) == 2 and all(path and lookups > 0 for path, lookups in caches), caches

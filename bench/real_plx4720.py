"""Real-data check on ../shared/data: GDSC PLX-4720 labels on CCLE bulk → A375 cells (SCAD).

Prints mean ± std AUC / AUPR over 5 repetitions (3-shot) for ssda, source_only and target_only
under both protocols: the numbers quoted in docs/results.md.
    .venv/bin/python bench/real_plx4720.py [path/to/shared/data]
"""

import sys
import time
import warnings
from pathlib import Path

from ssda_model.config import SSDAConfig
from ssda_model.datasets import public_plx4720_a375
from ssda_model.errors import SSDAInputWarning
from ssda_model.model import SSDAModel

warnings.filterwarnings("ignore", category=SSDAInputWarning)  # the SCAD and TGSA files are z-scored
data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
source, target = public_plx4720_a375(data_dir)
print(f"source {source.n_obs} lines, target {target.n_obs} cells")
print(f"{'protocol':<9}{'method':<13}{'AUC':>15}{'AUPR':>15}{'genes':>7}{'seconds':>9}")
for protocol in ("paper", "strict"):
    for method in ("ssda", "source_only", "target_only"):
        started = time.perf_counter()
        m = SSDAModel.fit(source, target, SSDAConfig(method=method, protocol=protocol, repetitions=5)).metrics
        print(
            f"{protocol:<9}{method:<13}{m['mean_auc']:>8.3f} ± {m['std_auc']:.3f}"
            f"{m['mean_aupr']:>8.3f} ± {m['std_aupr']:.3f}{m['n_genes']:>7}"
            f"{time.perf_counter() - started:>9.1f}",
            flush=True,
        )

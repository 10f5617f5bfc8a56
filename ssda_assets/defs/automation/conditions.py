"""Automation conditions that read the raw zone, evaluated on the code server (see sensors.py)."""

import dagster as dg

from ssda_assets.raw.catalog import scan
from ssda_assets.resources import paths_from_env


class DeclaredTask(dg.AutomationCondition):
    """True for the task partitions whose dataset's manifest names the drug.

    Tasks are drug × dataset partitions (ssda_assets.raw.catalog.undeclared says why), so a new
    dataset adds a task partition for every known drug. Without this condition, eager automation
    launched a run for each pair no manifest declares, only for it to find nothing to do: runs
    that clutter the Runs page and, on a small machine, slow the real training down.
    """

    @property
    def name(self) -> str:
        return "declared_task"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        raw = paths_from_env().raw
        declared = {str(key) for key in scan(raw).tasks(raw)}
        return dg.AutomationResult(
            context, context.candidate_subset.compute_intersection_with_partition_keys(declared)
        )

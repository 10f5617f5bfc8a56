"""What the raw zone holds: the datasets with valid manifests and the drugs they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from ssda_assets.raw.drugs import drug_key
from ssda_assets.raw.manifest import Manifest, dataset_folders, read_manifest
from ssda_assets.raw.partitions import dataset_partitions, drug_partitions, task_key
from ssda_model.errors import SSDAInputError

UNDECLARED_ASSET = dg.AssetKey("harmonized_expression")


@dataclass
class Catalog:
    manifests: dict[str, Manifest] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # dataset folder → why it was skipped

    def tasks(self, raw_dir: Path) -> list[dg.MultiPartitionKey]:
        """Every declared (drug, dataset) pair."""
        return [task_key(drug_key(d, raw_dir), name) for name, m in self.manifests.items() for d in m.drugs]


def scan(raw_dir: Path) -> Catalog:
    catalog = Catalog()
    for folder in dataset_folders(raw_dir):
        try:
            catalog.manifests[folder.name] = read_manifest(folder)
        except SSDAInputError as exc:
            catalog.invalid[folder.name] = str(exc)
    return catalog


def undeclared(
    catalog: Catalog, raw_dir: Path, drugs: list[str], datasets: list[str]
) -> list[dg.AssetObservation]:
    """Why a task partition stays missing: one observation on `harmonized_expression`, the head of
    every task's chain, per (drug, dataset) pair among `drugs` × `datasets` that no manifest declares.

    Tasks are drug × dataset partitions because the task assets depend on per-drug and per-dataset
    assets; a one-dimensional task partition would need a custom partition mapping, which Dagster
    does not support. So the undeclared pairs exist as partitions, and this says why they are empty.
    """
    events = []
    for dataset in datasets:
        manifest = catalog.manifests.get(dataset)
        if manifest is None:
            continue
        declared = {drug_key(d, raw_dir) for d in manifest.drugs}
        events += [
            dg.AssetObservation(
                asset_key=UNDECLARED_ASSET,
                partition=task_key(drug, dataset),
                metadata={
                    "declared": False,
                    "reason": f"{dataset}'s dataset.yaml declares {', '.join(manifest.drugs)}, not {drug}: "
                    "this pair is "
                    "never materialized (add the drug to the manifest's drugs to train it)",
                },
            )
            for drug in drugs
            if drug not in declared
        ]
    return events


def register_partitions(instance: dg.DagsterInstance, raw_dir: Path) -> Catalog:
    """Add the dataset and drug partitions of every valid manifest, and say on the task partitions
    this creates without declaring them why they stay empty (idempotent)."""
    catalog = scan(raw_dir)
    datasets = sorted(catalog.manifests)
    drugs = sorted({drug_key(d, raw_dir) for m in catalog.manifests.values() for d in m.drugs})
    added = {}
    for definition, keys in ((dataset_partitions, datasets), (drug_partitions, drugs)):
        added[definition.name] = [k for k in keys if not instance.has_dynamic_partition(definition.name, k)]
        if added[definition.name]:
            instance.add_dynamic_partitions(definition.name, added[definition.name])
    new_pairs = undeclared(catalog, raw_dir, drugs, added["dataset"])
    new_pairs += undeclared(catalog, raw_dir, added["drug"], sorted(set(datasets) - set(added["dataset"])))
    for event in new_pairs:
        instance.report_runless_asset_event(event)
    return catalog


if __name__ == "__main__":
    from ssda_assets.resources import paths_from_env

    raw = paths_from_env().raw
    with dg.DagsterInstance.get() as dagster_instance:
        found = register_partitions(dagster_instance, raw)
    for dataset, manifest in found.manifests.items():
        print(f"{dataset}: drugs {', '.join(manifest.drugs)} ({manifest.format})")
    for dataset, reason in found.invalid.items():
        print(f"skipped {dataset}: {reason}")

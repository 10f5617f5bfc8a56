"""What the raw zone holds: the datasets with valid manifests and the drugs they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from ssda_assets.drugs import drug_key
from ssda_assets.manifest import Manifest, dataset_folders, read_manifest
from ssda_assets.partitions import dataset_partitions, drug_partitions, task_key
from ssda_model.errors import SSDAInputError


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


def register_partitions(instance: dg.DagsterInstance, raw_dir: Path) -> Catalog:
    """Add the dataset and drug partitions of every valid manifest (idempotent)."""
    catalog = scan(raw_dir)
    datasets = sorted(catalog.manifests)
    drugs = sorted({drug_key(d, raw_dir) for m in catalog.manifests.values() for d in m.drugs})
    for definition, keys in ((dataset_partitions, datasets), (drug_partitions, drugs)):
        new = [k for k in keys if not instance.has_dynamic_partition(definition.name, k)]
        if new:
            instance.add_dynamic_partitions(definition.name, new)
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

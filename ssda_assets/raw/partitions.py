"""Partitions: drugs and datasets grow as manifests arrive; a task is one (drug, dataset) pair."""

import warnings

import dagster as dg

drug_partitions = dg.DynamicPartitionsDefinition(name="drug")
dataset_partitions = dg.DynamicPartitionsDefinition(name="dataset")
task_partitions = dg.MultiPartitionsDefinition({"drug": drug_partitions, "dataset": dataset_partitions})


def _one_dimension(name: str) -> dg.MultiToSingleDimensionPartitionMapping:
    """A task's partition → its drug or dataset partition. Dagster marks this mapping beta (and
    says so on every construction); it is the documented way to depend on one dimension."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=dg.BetaWarning, message=".*MultiToSingleDimensionPartitionMapping"
        )
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=name)


by_drug = _one_dimension("drug")
by_dataset = _one_dimension("dataset")


def task_of(key: dg.MultiPartitionKey) -> tuple[str, str]:
    """(drug, dataset) of a task partition key."""
    return key.keys_by_dimension["drug"], key.keys_by_dimension["dataset"]


def task_key(drug: str, dataset: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"drug": drug, "dataset": dataset})

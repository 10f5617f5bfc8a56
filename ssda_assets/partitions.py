"""Partitions: drugs and datasets grow as manifests arrive; a task is one (drug, dataset) pair."""

import dagster as dg

drug_partitions = dg.DynamicPartitionsDefinition(name="drug")
dataset_partitions = dg.DynamicPartitionsDefinition(name="dataset")
task_partitions = dg.MultiPartitionsDefinition({"drug": drug_partitions, "dataset": dataset_partitions})

by_drug = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="drug")
by_dataset = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="dataset")


def task_key(drug: str, dataset: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"drug": drug, "dataset": dataset})

"""The raw zone: manifests users drop beside their data, the catalog of datasets and drugs they
declare, the partitions it grows, content fingerprints, ingestion into AnnData and the demo inputs."""

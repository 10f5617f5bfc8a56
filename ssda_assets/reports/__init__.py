"""What a person reads: figures for the Dagster UI and the self-contained attribution report."""

"""Dagster definitions of the ssda4drug platform; the method itself lives in `ssda_model`."""

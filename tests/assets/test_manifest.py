"""dataset.yaml: the schema, its defaults, and all problems reported together."""

from pathlib import Path

import pytest
import yaml

from ssda_assets.raw.manifest import read_manifest
from ssda_model.errors import SSDAInputError


def folder_with(tmp_path, manifest: dict, name="ds1"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "counts.h5ad").write_text("")
    (folder / "dataset.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_time_course_manifest(tmp_path):
    manifest = read_manifest(
        folder_with(
            tmp_path,
            {
                "drugs": "Erlotinib",
                "matrix": "counts.h5ad",
                "time": {
                    "column": "day",
                    "order": ["D0", "D2", "D19ERL", "D19DMSO"],
                    "sensitive": "D0",
                    "resistant": ["D19ERL"],
                },
                "contrasts": [{"name": "holiday", "a": "D19DMSO", "b": "D19ERL"}],
            },
        )
    )
    assert manifest.drugs == ("Erlotinib",) and manifest.format == "h5ad" and manifest.gene_id == "symbol"
    assert manifest.labels_from_time and manifest.time.sensitive == ("D0",)
    assert manifest.contrasts[0].a == "D19DMSO"


def test_scad_defaults(tmp_path):
    folder = tmp_path / "a375"
    folder.mkdir()
    (folder / "Target_expr_resp_z.PLX4720_tp4k.tsv").write_text("")
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump({"drugs": ["PLX4720"], "matrix": "Target_expr_resp_z.PLX4720_tp4k.tsv"})
    )
    manifest = read_manifest(folder)
    assert manifest.format == "scad" and manifest.normalized and manifest.gene_id == "entrez"
    assert manifest.label.column == "response" and manifest.label.sensitive == ("1",)


def test_every_problem_at_once(tmp_path):
    folder = folder_with(
        tmp_path,
        {
            "drugs": [],
            "matrix": "missing.h5ad",
            "gene_id": "refseq",
            "extra": 1,
            "time": {"column": "t", "order": ["a", "b"], "sensitive": ["c"]},
            "label": {"column": "x", "sensitive": ["s"], "resistant": ["s"]},
        },
    )
    with pytest.raises(SSDAInputError) as error:
        read_manifest(folder)
    message = str(error.value)
    for problem in (
        "unknown keys extra",
        "'drugs' must be",
        "'missing.h5ad' does not exist",
        "'gene_id' must be",
        "not in 'time.order': c",
        "share values",
        "not both",
    ):
        assert problem in message, problem


def test_csv_needs_an_orientation(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "counts.csv").write_text("")
    (folder / "dataset.yaml").write_text(yaml.safe_dump({"drugs": ["X"], "matrix": "counts.csv"}))
    with pytest.raises(SSDAInputError, match="'orientation' must be cells_by_genes or genes_by_cells"):
        read_manifest(folder)


def test_invalid_yaml(tmp_path):
    folder = tmp_path / "y"
    folder.mkdir()
    (folder / "dataset.yaml").write_text("drugs: [unclosed\n")
    with pytest.raises(SSDAInputError, match="not valid YAML"):
        read_manifest(folder)


def _escape(tmp_path, key: str, how: str) -> tuple[Path, str]:
    """A manifest whose `key` reaches the user's secret file outside the dataset folder, in four ways."""
    secret = tmp_path / "secret.tsv"
    secret.write_text("private\n")
    folder = tmp_path / "ds1"
    folder.mkdir()
    (folder / "counts.h5ad").write_text("")
    if how == "symlink":
        (folder / "innocent.tsv").symlink_to(secret)
        value = "innocent.tsv"
    elif how == "symlink_in_10x_folder":
        (folder / "filtered").mkdir()
        for name in ("matrix.mtx", "features.tsv"):
            (folder / "filtered" / name).write_text("")
        (folder / "filtered" / "barcodes.tsv").symlink_to(secret)
        value = "filtered"
    else:
        value = {"dotdot": "../secret.tsv", "absolute": str(secret)}[how]
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump({"drugs": ["X"], "matrix": "counts.h5ad", key: value})
    )
    return folder, value


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "symlink_in_10x_folder"])
@pytest.mark.parametrize("key", ["matrix", "obs", "source"])
def test_paths_must_stay_inside_the_dataset_folder(tmp_path, key, how):
    folder, value = _escape(tmp_path, key, how)
    with pytest.raises(SSDAInputError) as error:
        read_manifest(folder)
    message = str(error.value)
    assert message.startswith(f"{folder / 'dataset.yaml'}: ") and "\n" not in message
    assert f"'{key}' {value!r}" in message
    assert ("absolute path" if how == "absolute" else "leads outside the dataset folder") in message
    assert (tmp_path / "secret.tsv").read_text() == "private\n"


def test_paths_inside_the_folder_and_its_subfolders_are_fine(tmp_path):
    folder = folder_with(tmp_path, {"drugs": ["X"], "matrix": "sub/../counts.h5ad", "obs": "meta/cells.csv"})
    (folder / "meta").mkdir()
    (folder / "meta" / "cells.csv").write_text("")
    (folder / "sub").mkdir()
    (folder / "link.h5ad").symlink_to(folder / "counts.h5ad")
    assert read_manifest(folder).obs == folder / "meta" / "cells.csv"
    (folder / "dataset.yaml").write_text(yaml.safe_dump({"drugs": ["X"], "matrix": "link.h5ad"}))
    assert read_manifest(folder).format == "h5ad"

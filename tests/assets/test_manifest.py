"""dataset.yaml: the schema, its defaults, and all problems reported together."""

import pytest
import yaml

from ssda_assets.manifest import read_manifest
from ssda_model.errors import SSDAInputError


def folder_with(tmp_path, manifest: dict, name="ds1"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "counts.h5ad").write_text("")
    (folder / "dataset.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_time_course_manifest(tmp_path):
    manifest = read_manifest(folder_with(tmp_path, {
        "drugs": "Erlotinib", "matrix": "counts.h5ad",
        "time": {"column": "day", "order": ["D0", "D2", "D19ERL", "D19DMSO"], "sensitive": "D0", "resistant": ["D19ERL"]},
        "contrasts": [{"name": "holiday", "a": "D19DMSO", "b": "D19ERL"}]}))
    assert manifest.drugs == ("Erlotinib",) and manifest.format == "h5ad" and manifest.gene_id == "symbol"
    assert manifest.labels_from_time and manifest.time.sensitive == ("D0",)
    assert manifest.contrasts[0].a == "D19DMSO"


def test_scad_defaults(tmp_path):
    folder = tmp_path / "a375"
    folder.mkdir()
    (folder / "Target_expr_resp_z.PLX4720_tp4k.tsv").write_text("")
    (folder / "dataset.yaml").write_text(yaml.safe_dump({"drugs": ["PLX4720"],
                                                          "matrix": "Target_expr_resp_z.PLX4720_tp4k.tsv"}))
    manifest = read_manifest(folder)
    assert manifest.format == "scad" and manifest.normalized and manifest.gene_id == "entrez"
    assert manifest.label.column == "response" and manifest.label.sensitive == ("1",)


def test_every_problem_at_once(tmp_path):
    folder = folder_with(tmp_path, {
        "drugs": [], "matrix": "missing.h5ad", "gene_id": "ensembl", "extra": 1,
        "time": {"column": "t", "order": ["a", "b"], "sensitive": ["c"]},
        "label": {"column": "x", "sensitive": ["s"], "resistant": ["s"]}})
    with pytest.raises(SSDAInputError) as error:
        read_manifest(folder)
    message = str(error.value)
    for problem in ("unknown keys extra", "'drugs' must be", "'missing.h5ad' does not exist", "'gene_id' must be",
                    "not in 'time.order': c", "share values", "not both"):
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

"""Offline gene-ID harmonisation with the shipped org.Hs.eg.db table."""

import numpy as np
import pytest
from scipy import sparse

from ssda_model.data.gene_ids import (
    GENE_TABLE,
    apply_gene_mapping,
    guess_id_type,
    human_gene_table,
    map_gene_ids,
    read_user_gene_map,
)
from ssda_model.errors import SSDAInputError

SYMBOLS = ["TP53", "ERBB2", "EGFR", "BRAF", "RETREG1"]
ENTREZ = ["7157", "2064", "1956", "673", "54463"]
ENSEMBL = [
    "ENSG00000141510.18",
    "ENSG00000141736.14",
    "ENSG00000146648",
    "ENSG00000157764.16",
    "ENSG00000154153.15",
]
ALIASES = ["P53", "HER2", "ERBB1", "BRAF1", "FAM134B"]  # outdated symbols, each naming one gene


def test_the_gene_table_ships_with_the_package():
    table = human_gene_table()
    assert GENE_TABLE.is_file() and (GENE_TABLE.parent / "README.md").is_file()
    assert len(table.entrez) == 77614 and table.entrez["7157"] == "TP53"


def test_entrez_ensembl_and_alias_keyed_matrices_map_to_the_same_symbols():
    values = np.arange(15, dtype=np.float32).reshape(3, 5)
    results = {}
    for id_type, ids in (("entrez", ENTREZ), ("ensembl", ENSEMBL), ("symbol", ALIASES), ("symbol", SYMBOLS)):
        mapping = map_gene_ids(ids, id_type, human_gene_table())
        matrix, genes = apply_gene_mapping(values, mapping)
        results[(id_type, ids[0])] = (genes, matrix)
        assert mapping.report()["genes_out"] == 5 and mapping.ambiguous == {}
    for genes, matrix in results.values():
        assert genes == SYMBOLS and np.array_equal(matrix, values)
    routes = {
        key: set(map_gene_ids(ids, key, human_gene_table()).routes)
        for key, ids in (("entrez", ENTREZ), ("ensembl", ENSEMBL))
    }
    assert routes == {"entrez": {"entrez"}, "ensembl": {"ensembl"}}
    assert set(map_gene_ids(ALIASES, "symbol", human_gene_table()).routes) == {"unique_alias"}


def test_ambiguous_aliases_are_dropped_and_reported():
    ids = ["TP53", "NEU", "A1B", "HER2"]  # NEU names ERBB2 and NEU1, A1B names A1BG and SNTB1
    mapping = map_gene_ids(ids, "symbol", human_gene_table())
    assert mapping.symbols == ["TP53", None, None, "ERBB2"]
    assert mapping.ambiguous == {"NEU": ("ERBB2", "NEU1"), "A1B": ("A1BG", "SNTB1")}
    report = mapping.report()
    assert report["dropped_ambiguous"] == 2 and report["unique_alias"] == 1 and report["genes_out"] == 2
    matrix, genes = apply_gene_mapping(np.eye(4, dtype=np.float32), mapping)
    assert genes == ["TP53", "ERBB2"] and matrix.shape == (4, 2)


def test_an_alias_whose_gene_is_present_and_unknown_ids_are_kept_as_they_are():
    mapping = map_gene_ids(["FAM134B", "RETREG1", "GENE0001"], "symbol", human_gene_table())
    assert mapping.symbols == ["FAM134B", "RETREG1", "GENE0001"]
    assert mapping.routes == ["alias_taken", "official_symbol", "kept_unmapped"]
    assert map_gene_ids(["99999999"], "entrez", human_gene_table()).symbols == ["99999999"]


def test_ids_of_one_gene_are_averaged_and_sparse_stays_sparse():
    mapping = map_gene_ids(
        ["ENSG00000141510.18", "ENSG00000141510_PAR_Y", "ENSG00000141736"], "ensembl", human_gene_table()
    )
    assert mapping.report()["merged_duplicates"] == 1
    matrix, genes = apply_gene_mapping(sparse.csr_matrix(np.array([[1.0, 3.0, 5.0]])), mapping)
    assert sparse.issparse(matrix) and genes == ["TP53", "ERBB2"]
    assert np.allclose(matrix.toarray(), [[2.0, 5.0]])


def test_a_user_map_overrides_the_table_and_no_table_keeps_ids(tmp_path):
    path = tmp_path / "gene_map.tsv"
    path.write_text("entrez\tsymbol\n7157\tMY_TP53\n")
    user = read_user_gene_map(path)
    assert map_gene_ids(["7157", "2064"], "entrez", human_gene_table(), user).symbols == ["MY_TP53", "ERBB2"]
    assert map_gene_ids(["7157", "2064"], "entrez", None, user).symbols == ["MY_TP53", "2064"]
    path.write_text("gene\tname\n1\tA\n")
    with pytest.raises(SSDAInputError, match="expected a column 'symbol'"):
        read_user_gene_map(path)


def test_id_type_is_recognised_by_form():
    assert guess_id_type(ENTREZ) == "entrez" and guess_id_type(ENSEMBL) == "ensembl"
    assert guess_id_type(SYMBOLS) == "symbol"

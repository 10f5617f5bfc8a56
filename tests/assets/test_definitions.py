import dagster as dg

from ssda_assets.definitions import defs


def test_definitions_load():
    definitions = defs()
    assert isinstance(definitions, dg.Definitions)
    definitions.validate_loadable(definitions)

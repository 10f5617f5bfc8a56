"""Automation: sensors on the raw zone, the weekly schedule, eager conditions, and the whole graph."""

import re
import shutil
import sys

import dagster as dg
import yaml

from ssda_assets.defs.automation.sensors import gdsc_inputs_sensor, new_dataset_sensor, weekly_retraining
from ssda_assets.defs.single_cell.assets import HARMONIZE_WHEN, TARGET_WHEN
from ssda_assets.operations.pipeline import main
from ssda_assets.raw.partitions import task_key
from ssda_assets.registry.versions import model_name
from tests.platform_helpers import TASKS


def evaluate(sensor, platform, cursor=None):
    context = dg.build_sensor_context(
        instance=platform.instance, cursor=cursor, resources={"paths": platform.paths}
    )
    return sensor(context)


def test_new_dataset_adds_partitions_and_requests_runs(platform):
    result = evaluate(new_dataset_sensor, platform)
    assert sorted(
        r.partition_key for r in result.run_requests if r.asset_selection == [dg.AssetKey("sc_dataset")]
    ) == ["jhu006_gefitinib", "mcf7_bortezomib", "pc9_erlotinib"]
    # the platform fixture registered the partitions already; nothing is added twice
    assert result.dynamic_partitions_requests == []

    folder = platform.paths.raw / "datasets" / "jhu006_copy"
    shutil.copytree(platform.paths.raw / "datasets" / "jhu006_gefitinib", folder)
    manifest = yaml.safe_load((folder / "dataset.yaml").read_text())
    (folder / "dataset.yaml").write_text(yaml.safe_dump({**manifest, "drugs": ["PLX-4720"]}))
    second = evaluate(new_dataset_sensor, platform, cursor=result.cursor)
    assert [(r.partition_key, r.asset_selection) for r in second.run_requests] == [
        ("jhu006_copy", [dg.AssetKey("sc_dataset")]),
        ("plx4720", [dg.AssetKey("gdsc_labels")]),
    ]
    added = {(r.partitions_def_name, tuple(r.partition_keys)) for r in second.dynamic_partitions_requests}
    assert added == {("dataset", ("jhu006_copy",)), ("drug", ("plx4720",))}
    # the new task partitions no manifest declares say why they stay empty
    why = {str(e.partition): e.metadata["reason"].value for e in second.asset_events}
    expected = [task_key(d, "jhu006_copy") for d in ("bortezomib", "erlotinib", "gefitinib")]
    expected += [task_key("plx4720", n) for n in ("jhu006_gefitinib", "mcf7_bortezomib", "pc9_erlotinib")]
    assert set(why) == {str(k) for k in expected}
    assert "declares PLX-4720, not gefitinib" in why[str(task_key("gefitinib", "jhu006_copy"))]

    third = evaluate(new_dataset_sensor, platform, cursor=second.cursor)
    assert third.run_requests == [] and third.dynamic_partitions_requests == []  # unchanged: nothing


def test_undeclared_task_partitions_say_why_they_stay_empty(platform):
    observed = platform.instance.fetch_observations(dg.AssetKey("harmonized_expression"), limit=100).records
    reasons = {r.partition_key: r.asset_observation.metadata["reason"].value for r in observed}
    declared = {str(task_key(drug, dataset)) for drug, dataset in TASKS}
    assert len(reasons) == 6 and not set(reasons) & declared  # 3 drugs × 3 datasets, 3 declared
    assert (
        "mcf7_bortezomib's dataset.yaml declares Bortezomib, not gefitinib"
        in reasons[str(task_key("gefitinib", "mcf7_bortezomib"))]
    )


def test_changed_dataset_is_requested_again(platform):
    first = evaluate(new_dataset_sensor, platform)
    (platform.paths.raw / "datasets" / "mcf7_bortezomib" / "dataset.yaml").write_text(
        (platform.paths.raw / "datasets" / "mcf7_bortezomib" / "dataset.yaml").read_text() + "\n# edited\n"
    )
    again = evaluate(new_dataset_sensor, platform, cursor=first.cursor)
    assert [r.partition_key for r in again.run_requests] == ["mcf7_bortezomib"]


def test_invalid_manifest_is_skipped_with_a_logged_reason(platform, capfd):
    first = evaluate(new_dataset_sensor, platform)
    folder = platform.paths.raw / "datasets" / "broken"
    folder.mkdir()
    (folder / "dataset.yaml").write_text("drugs: [Gefitinib]\ncolour: blue\n")
    result = evaluate(new_dataset_sensor, platform, cursor=first.cursor)
    assert result.run_requests == []
    logged = [line for line in capfd.readouterr().err.splitlines() if "skipping dataset broken" in line]
    assert logged and "unknown keys colour" in logged[0] and "WARNING" in logged[0]


def test_gdsc_sensor_reacts_to_changed_files_only(platform):
    first = evaluate(gdsc_inputs_sensor, platform)
    assert len(first.run_requests) == 1
    assert isinstance(evaluate(gdsc_inputs_sensor, platform, cursor=first.cursor), dg.SkipReason)
    path = platform.paths.raw / "GDSC2_fitted_dose_response_demo.csv"
    path.write_text(path.read_text() + "\n")
    assert len(evaluate(gdsc_inputs_sensor, platform, cursor=first.cursor).run_requests) == 1


def test_schedule_and_automation_conditions_are_wired(platform):
    defs = platform.defs
    schedule = defs.get_schedule_def("weekly_retraining")
    assert schedule.cron_schedule == "0 3 * * 1"
    context = dg.build_schedule_context(
        instance=platform.instance,
        resources={"paths": platform.paths},
        scheduled_execution_time=__import__("datetime").datetime(2026, 11, 30, 3),
    )
    requests = weekly_retraining(context)
    assert sorted(str(r.partition_key) for r in requests) == sorted(
        ["jhu006_gefitinib|gefitinib", "mcf7_bortezomib|bortezomib", "pc9_erlotinib|erlotinib"]
    )
    eager = dg.AutomationCondition.eager()
    for name in ("gdsc_labels", "trained_model"):
        assert defs.get_assets_def(name).automation_conditions_by_key[dg.AssetKey(name)] == eager, name
    target = defs.get_assets_def("target_dataset").automation_conditions_by_key
    assert target[dg.AssetKey("target_dataset")] == TARGET_WHEN  # eager, declared pairs only
    harmonize = defs.get_assets_def("harmonized_expression").automation_conditions_by_key
    assert (
        harmonize[dg.AssetKey("harmonized_expression")] == HARMONIZE_WHEN
    )  # eager, missing GDSC labels allowed
    assert defs.get_assets_def("trained_model").op.pool == "gpu"


def test_demo_entry_point_materializes_everything_and_says_what_it_is_doing(platform, capsys, monkeypatch):
    """What `make demo` runs: one progress line per stage and per partition, the table, the total."""
    monkeypatch.setattr(sys, "argv", ["pipeline", "--demo", "--epochs", "2", "--repetitions", "2"])
    assert main() == 0
    out = capsys.readouterr().out.splitlines()
    stages = [line for line in out if " stage " in line]
    assert [line.split(" stage ")[1].split(":")[0] for line in stages] == [f"{i}/5" for i in range(1, 6)]
    per_partition = [line for line in out if re.search(r"\]   \S+: \d+ materialized in \d+\.\d s$", line)]
    assert len(per_partition) == 1 + 3 + 3 + 3 + 3  # GDSC, drugs, datasets, tasks twice
    assert (
        out[-1].startswith("total ") and sum(line.startswith("|") for line in out) == 2 + 3
    )  # header, rule, tasks
    client = platform.mlflow.client()
    for drug, dataset in TASKS:
        assert client.get_model_version_by_alias(model_name(drug, dataset), "champion").version == 1

    assert main() == 0  # running twice adds versions
    for drug, dataset in TASKS:
        assert client.get_model_version_by_alias(model_name(drug, dataset), "challenger").version == 2

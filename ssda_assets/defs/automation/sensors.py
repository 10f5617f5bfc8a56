"""New data trains by itself: sensors on the raw zone, the automation sensor, a weekly retraining.

Downstream assets carry `AutomationCondition.eager()`; the automation sensor that evaluates those
conditions is declared here RUNNING, so once the ingestion runs land, labels, harmonisation,
training and the analyses follow without a click. Every sensor can be paused in the UI
(Automation tab); the interval comes from SSDA_SENSOR_INTERVAL (seconds, default 30).
"""

import json

import dagster as dg

from ssda_assets import settings
from ssda_assets.raw.catalog import scan, undeclared
from ssda_assets.raw.drugs import drug_key
from ssda_assets.raw.fingerprint import dataset_hash, gdsc_files, gdsc_hash, materialized_hash
from ssda_assets.raw.partitions import dataset_partitions, drug_partitions
from ssda_assets.resources import PlatformPaths

GDSC_ASSETS = ("gdsc_expression", "gdsc_response")
INTERVAL = settings.sensor_interval_s()

automation = dg.AutomationConditionSensorDefinition(
    "default_automation_condition_sensor",
    target=dg.AssetSelection.all(),
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates every asset's automation condition: what follows new data, trainings, champions.",
    # One run per requested task, queued at once. With backfills (Dagster's default when a tick
    # asks for more than one partition), the runs waited for the backfill daemon's next pass,
    # up to 30 s after the new data landed.
    emit_backfills=False,
    use_user_code_server=True,  # DeclaredTask reads the manifests (conditions.py)
)


@dg.sensor(
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets("sc_dataset", "gdsc_labels"),
)
def new_dataset_sensor(context: dg.SensorEvaluationContext, paths: PlatformPaths) -> dg.SensorResult:
    """A new or changed dataset folder (by content hash) adds its partitions and requests its
    ingestion and the GDSC labels of its drugs (only when it trains on GDSC: a dataset with its own
    SCAD `source:` needs none, and a drug GDSC never screened would only fail); an invalid manifest
    is logged once and skipped. A folder the cursor does not know yet counts as seen when sc_dataset
    already read these very bytes."""
    seen = json.loads(context.cursor) if context.cursor else {}
    catalog = scan(paths.raw)
    folders = {
        **{n: m.folder for n, m in catalog.manifests.items()},
        **{n: paths.raw / "datasets" / n for n in catalog.invalid},
    }
    hashes = {name: dataset_hash(folder) for name, folder in folders.items()}
    for name in hashes.keys() - seen.keys():
        seen[name] = materialized_hash(context.instance, "sc_dataset", name)
    changed = [name for name, digest in hashes.items() if seen.get(name) != digest]
    for name in changed:
        if name in catalog.invalid:
            context.log.warning(f"skipping dataset {name}: {catalog.invalid[name]}")
    ready = [name for name in changed if name in catalog.manifests]
    declared = {name: {drug_key(d, paths.raw) for d in catalog.manifests[name].drugs} for name in ready}
    drugs = sorted(set().union(*declared.values()))
    on_gdsc = {d for name, keys in declared.items() if catalog.manifests[name].source is None for d in keys}
    requests = [
        dg.RunRequest(
            run_key=f"sc_dataset:{name}:{hashes[name][:12]}",
            partition_key=name,
            asset_selection=[dg.AssetKey("sc_dataset")],
        )
        for name in ready
    ]
    known_drugs = set(context.instance.get_dynamic_partitions(drug_partitions.name))
    new_drugs = [d for d in drugs if d not in known_drugs]
    requests += [
        dg.RunRequest(
            run_key=f"gdsc_labels:{d}", partition_key=d, asset_selection=[dg.AssetKey("gdsc_labels")]
        )
        for d in new_drugs
        if d in on_gdsc
    ]
    known_datasets = set(context.instance.get_dynamic_partitions(dataset_partitions.name))
    new_datasets = [n for n in ready if n not in known_datasets]
    partition_requests = []
    if new_datasets:
        partition_requests.append(dataset_partitions.build_add_request(new_datasets))
    if new_drugs:
        partition_requests.append(drug_partitions.build_add_request(new_drugs))
    why_empty = undeclared(
        catalog, paths.raw, sorted(known_drugs | set(new_drugs)), new_datasets
    ) + undeclared(catalog, paths.raw, new_drugs, sorted(known_datasets))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partition_requests,
        asset_events=why_empty,
        cursor=json.dumps(hashes, sort_keys=True),
    )


@dg.sensor(
    minimum_interval_seconds=2 * INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(*GDSC_ASSETS),
)
def gdsc_inputs_sensor(context: dg.SensorEvaluationContext, paths: PlatformPaths):
    """Re-read GDSC when its files change; labels, harmonisation and training follow (eager)."""
    if not gdsc_files(paths.raw):
        return dg.SkipReason(f"no GDSC files in {paths.raw} yet")
    digest = gdsc_hash(paths.raw)
    read = (
        [context.cursor] if context.cursor else [materialized_hash(context.instance, a) for a in GDSC_ASSETS]
    )
    if all(r == digest for r in read):
        return dg.SkipReason("GDSC inputs unchanged")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"gdsc:{digest[:12]}")], cursor=digest)


@dg.schedule(
    cron_schedule=settings.retrain_cron(),
    target=dg.AssetSelection.assets("trained_model"),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    execution_timezone="UTC",
)
def weekly_retraining(context: dg.ScheduleEvaluationContext, paths: PlatformPaths):
    """Retrain every declared task (cron from SSDA_RETRAIN_CRON, default Mondays 03:00 UTC)."""
    tasks = scan(paths.raw).tasks(paths.raw)
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"retrain:{task}:{stamp}", partition_key=task) for task in tasks]

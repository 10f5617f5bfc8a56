"""New data trains by itself: sensors on the raw zone, a weekly retraining schedule.

Downstream assets carry `AutomationCondition.eager()`, so once these runs land, labels,
harmonisation and training follow without further requests.
"""

import json
import os

import dagster as dg

from ssda_assets.catalog import scan
from ssda_assets.drugs import drug_key
from ssda_assets.fingerprint import content_hash
from ssda_assets.partitions import dataset_partitions, drug_partitions
from ssda_assets.resources import PlatformPaths

GDSC_PATTERNS = ("Cell_line_RMA_proc_basalExp*", "*fitted_dose_response*", "drug_aliases.yaml")


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           asset_selection=dg.AssetSelection.assets("sc_dataset", "gdsc_labels"))
def new_dataset_sensor(context: dg.SensorEvaluationContext, paths: PlatformPaths) -> dg.SensorResult:
    """A new or changed dataset folder (by content hash) adds its partitions and requests its
    ingestion and its drugs' labels; an invalid manifest is logged once and skipped."""
    seen = json.loads(context.cursor) if context.cursor else {}
    catalog = scan(paths.raw)
    folders = {**{n: m.folder for n, m in catalog.manifests.items()},
               **{n: paths.raw / "datasets" / n for n in catalog.invalid}}
    hashes = {name: content_hash([folder], folder) for name, folder in folders.items()}
    changed = [name for name, digest in hashes.items() if seen.get(name) != digest]
    for name in changed:
        if name in catalog.invalid:
            context.log.warning(f"skipping dataset {name}: {catalog.invalid[name]}")
    ready = [name for name in changed if name in catalog.manifests]
    drugs = sorted({drug_key(d, paths.raw) for name in ready for d in catalog.manifests[name].drugs})
    requests = [dg.RunRequest(run_key=f"sc_dataset:{name}:{hashes[name][:12]}", partition_key=name,
                              asset_selection=[dg.AssetKey("sc_dataset")]) for name in ready]
    known_drugs = set(context.instance.get_dynamic_partitions(drug_partitions.name))
    new_drugs = [d for d in drugs if d not in known_drugs]
    requests += [dg.RunRequest(run_key=f"gdsc_labels:{d}", partition_key=d, asset_selection=[dg.AssetKey("gdsc_labels")])
                 for d in new_drugs]
    known_datasets = set(context.instance.get_dynamic_partitions(dataset_partitions.name))
    partition_requests = []
    if [n for n in ready if n not in known_datasets]:
        partition_requests.append(dataset_partitions.build_add_request([n for n in ready if n not in known_datasets]))
    if new_drugs:
        partition_requests.append(drug_partitions.build_add_request(new_drugs))
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=partition_requests,
                           cursor=json.dumps(hashes, sort_keys=True))


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           asset_selection=dg.AssetSelection.assets("gdsc_expression", "gdsc_response"))
def gdsc_inputs_sensor(context: dg.SensorEvaluationContext, paths: PlatformPaths):
    """Re-read GDSC when its files change; labels, harmonisation and training follow (eager)."""
    files = sorted({f for pattern in GDSC_PATTERNS for f in paths.raw.glob(pattern)})
    if not files:
        return dg.SkipReason(f"no GDSC files in {paths.raw} yet")
    digest = content_hash(files, paths.raw)
    if digest == context.cursor:
        return dg.SkipReason("GDSC inputs unchanged")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"gdsc:{digest[:12]}")], cursor=digest)


@dg.schedule(cron_schedule=os.environ.get("SSDA_RETRAIN_CRON", "0 3 * * 1"), target=dg.AssetSelection.assets("trained_model"),
             default_status=dg.DefaultScheduleStatus.RUNNING, execution_timezone="UTC")
def weekly_retraining(context: dg.ScheduleEvaluationContext, paths: PlatformPaths):
    """Retrain every declared task (cron from SSDA_RETRAIN_CRON, default Mondays 03:00 UTC)."""
    tasks = scan(paths.raw).tasks(paths.raw)
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [dg.RunRequest(run_key=f"retrain:{task}:{stamp}", partition_key=task) for task in tasks]

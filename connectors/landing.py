"""Land a dlt source into its raw dataset, and report what landed.

Every run starts from an empty, throw-away dlt working folder, so dlt restores
the cursors from the destination, where they were committed with the rows they
describe. A stale local folder can therefore never push a cursor past the data.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.extract.exceptions import PipeException
from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.errors import ConnectorError, StreamRefused

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# Merges go through raw_*_staging; empty it after each load rather than keep a second copy.
os.environ.setdefault("LOAD__TRUNCATE_STAGING_DATASET", "true")


@dataclass
class LandingResult:
    rows_by_table: dict[str, int] = field(default_factory=dict)
    refused: dict[str, StreamRefused] = field(default_factory=dict)   # resource -> why it stopped


def empty_table_marker() -> Any:
    """Yield this from a resource that produced no rows, so its raw table still exists (empty).

    Without it dlt creates no table for a stream that has never returned a row, and every
    model built on the stream fails. The marker loads through INSERT statements because
    dlt's DuckDB jsonl loader cannot load an empty file (and every destination takes them).
    """
    return dlt.mark.with_hints(dlt.mark.materialize_table_schema(), dlt.mark.make_hints(file_format="insert_values"))


class LandingFailed(RuntimeError):
    """Landing failed for a reason other than a connector error (destination, schema)."""


def land(source: Any, destination: Any, dataset: str, pipeline_name: str,
         loader_file_format: str = "jsonl", workdir_root: Path | None = None,
         progress: Any = None) -> LandingResult:
    """Run `source` into `dataset`. dlt's working folder is made under `workdir_root` (the
    writer's own folder, which the next run empties, so a killed run leaves nothing behind in
    $TMPDIR); `progress` is a dlt collector (connectors.progress).

    `source` may be a function that makes the source: then a stream the vendor refuses for good
    (StreamRefused) stops alone. The source is made again without it and its dependants, in a
    fresh working folder, so nothing of the refused stream is loaded and its cursor stays where
    the warehouse has it; the other streams land, and the result names what was refused."""
    remake = callable(source) and not hasattr(source, "resources")     # a DltSource is callable too
    make = source if remake else (lambda: source)
    refused: dict[str, StreamRefused] = {}
    while True:
        selected = _without(make(), refused)
        if not selected.selected_resources:
            return LandingResult({}, refused)
        try:
            rows = _run(selected, destination, dataset, pipeline_name, loader_file_format, workdir_root, progress)
        except _Refused as exc:
            if exc.resource in refused or not remake:
                raise exc.error from None
            refused[exc.resource] = exc.error
            continue
        return LandingResult(rows, refused)


class _Refused(Exception):
    def __init__(self, resource: str, error: StreamRefused):
        self.resource, self.error = resource, error


def _without(source: Any, refused: dict) -> Any:
    """The source without the refused resources and those that read from them (transformers)."""
    if not refused:
        return source
    keep = [name for name, resource in source.selected_resources.items() if not _reads_from(resource, refused)]
    return source.with_resources(*keep)


def _reads_from(resource: Any, names: dict) -> bool:
    pipe = resource._pipe
    while pipe is not None:
        if pipe.name in names:
            return True
        pipe = pipe.parent
    return False


def _run(source: Any, destination: Any, dataset: str, pipeline_name: str, loader_file_format: str,
         workdir_root: Path | None, progress: Any) -> dict[str, int]:
    if workdir_root is not None:
        workdir_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dealsync-dlt-", dir=workdir_root) as workdir:
        pipeline = dlt.pipeline(pipeline_name=pipeline_name, destination=destination,
                                dataset_name=dataset, pipelines_dir=workdir, progress=progress)
        try:
            info = pipeline.run(source, loader_file_format=loader_file_format)
            _add_declared_columns(pipeline)
        except PipelineStepFailed as exc:
            cause, resource = _root_cause(exc), _failed_resource(exc)
            if isinstance(cause, StreamRefused) and resource in source.selected_resources:
                raise _Refused(resource, cause) from None
            raise cause from None
        return _rows_loaded(pipeline, info)


def _failed_resource(exc: BaseException) -> str | None:
    """The resource whose extraction raised, named by dlt's wrapper."""
    while exc is not None:
        if isinstance(exc, PipeException):
            return exc.pipe_name
        exc = exc.__cause__ or exc.__context__
    return None


def _add_declared_columns(pipeline: Any) -> None:
    """Give every raw table each column its resource declares, whether rows came or not.

    dlt alters only the tables a load brings rows to, although the schema it stores already
    holds every declared column: a release that declares a new column (a `rejected_*` one, say)
    would leave the model reading a column that is not there until that stream next brings a
    row, and every run fail. Forcing the schema update compares each table with the destination
    and adds what is missing (one catalog query per dataset when nothing is)."""
    if not pipeline.default_schema_name:
        return                           # nothing has been landed yet
    with pipeline.destination_client() as client:
        client.update_stored_schema(force=True)


def _rows_loaded(pipeline: Any, info: Any) -> dict[str, int]:
    """Rows each table received in this run, counted in the destination itself by load id
    (the normalizer's counts are not rows for every file format)."""
    tables = {job.job_file_info.table_name for package in info.load_packages
              for job in package.jobs.get("completed_jobs", [])}
    load_ids = list(info.loads_ids)
    counts = {}
    with pipeline.sql_client() as client:
        for table in sorted(t for t in tables if not t.startswith("_dlt")):
            markers = ", ".join(["%s"] * len(load_ids))
            sql = f"select count(*) from {client.make_qualified_table_name(table)} where _dlt_load_id in ({markers})"
            counts[table] = client.execute_sql(sql, *load_ids)[0][0]
    return counts


def _root_cause(exc: BaseException) -> Exception:
    """The ConnectorError behind dlt's wrappers, or a LandingFailed naming the deepest cause."""
    deepest: BaseException = exc
    while True:
        if isinstance(deepest, ConnectorError):
            return deepest
        nested = deepest.__cause__ or deepest.__context__
        if nested is None:
            break
        deepest = nested
    return LandingFailed(f"{str(exc).splitlines()[0]} {type(deepest).__name__}: {str(deepest)[:300]}")

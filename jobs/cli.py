"""The `dealsync` command.

  dealsync sandbox [--seed N] [--size small|medium|large] [--write-config FILE]
  dealsync run     [--config FILE] [--warehouse PATH] [--verbose] [--log-file FILE]
  dealsync demo    [--seed N] [--verbose] [--log-file FILE]
  dealsync migrate [--config FILE] [--warehouse PATH]
  dealsync report  [--config FILE] [--warehouse PATH] [--out report.html]

Errors print as one clear line each and exit 1 (130 when stopped by Ctrl-C or SIGTERM);
tracebacks only with --verbose or in the log file. Progress goes to the terminal and the log.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path

import yaml
from rich.console import Console

from jobs import logs
from jobs.config import ConfigError, load_config, open_warehouse
from jobs.report import currency_symbol, write_report
from jobs.runner import RunOutcome, run_job
from jobs.summary import print_summary
from pipeline_model.migrations import MigrationError, migrate, schema_version
from pipeline_model.stages import SALESFORCE_STANDARD
from pipeline_model.warehouse import Warehouse
from pipeline_model.writer import Outcome, WarehouseBusy, WarehouseDamaged, new_holder, writer_dir, writing
from sandbox.runner import Sandbox

log = logging.getLogger("dealsync.run")
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never re-wrap paths in messages

DEMO_DIR = Path(".dealsync")
CRM_MODES = ["salesforce", "hubspot", "both"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        err_console.print(f"[red]configuration error[/]\n{exc}", highlight=False)
        return 1
    except (WarehouseBusy, WarehouseDamaged) as exc:
        err_console.print(f"[red]warehouse not written[/]: {exc}", highlight=False)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dealsync", description="Sales-pipeline sync middleware.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    sandbox = sub.add_parser("sandbox", help="run the local vendor emulators in the foreground")
    sandbox.add_argument("--seed", type=int, default=42)
    sandbox.add_argument("--size", choices=["small", "medium", "large"], default="small")
    sandbox.add_argument("--write-config", type=Path, metavar="FILE", help="write a dealsync.yaml pointing at the sandbox")
    sandbox.add_argument("--crm", choices=CRM_MODES, default="both", help="where the sandbox org lives")
    sandbox.add_argument("--port", type=int, default=0, help="Salesforce emulator port (default: any free port)")
    sandbox.set_defaults(handler=_cmd_sandbox)

    run = sub.add_parser("run", help="run the whole chain once (sync, model, metrics)")
    run.add_argument("--config", type=Path, default=Path("dealsync.yaml"))
    run.add_argument("--warehouse", type=Path, help="override warehouse.path from the config")
    _add_log_arguments(run)
    run.set_defaults(handler=_cmd_run)

    demo = sub.add_parser("demo", help="sandbox + full chain into .dealsync/warehouse.duckdb + summary")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--size", choices=["small", "medium", "large"], default="small")
    demo.add_argument("--crm", choices=CRM_MODES, default="both", help="where the sandbox org lives")
    _add_log_arguments(demo)
    demo.set_defaults(handler=_cmd_demo)

    migrate_cmd = sub.add_parser("migrate", help="upgrade the warehouse tables dealsync owns to this release")
    migrate_cmd.add_argument("--config", type=Path, default=Path("dealsync.yaml"))
    migrate_cmd.add_argument("--warehouse", type=Path, help="override warehouse.path from the config")
    migrate_cmd.set_defaults(handler=_cmd_migrate)

    report = sub.add_parser("report", help="write the pipeline report: one self-contained HTML page")
    report.add_argument("--config", type=Path, default=Path("dealsync.yaml"))
    report.add_argument("--warehouse", type=Path, help="override warehouse.path from the config")
    report.add_argument("--out", type=Path, default=Path("report.html"), help="where to write it")
    report.set_defaults(handler=_cmd_report)
    return parser


def _add_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", "-v", action="store_true", help="debug lines, and each failure's traceback")
    parser.add_argument("--log-file", type=Path, default=logs.DEFAULT_LOG_FILE,
                        help=f"where the run's log is kept (default {logs.DEFAULT_LOG_FILE}, rotated at 10 MB)")


def write_sandbox_config(sandbox: Sandbox, path: Path, warehouse_path: Path) -> Path:
    """A dealsync.yaml for the sandbox, with the stage mapping spelled out as a template."""
    config = sandbox.config(str(warehouse_path.resolve()))
    config["stages"] = {"salesforce": {name: stage.value for name, stage in SALESFORCE_STANDARD.items()}}
    header = (f"# Written by `dealsync sandbox` (seed {sandbox.org.seed}, size {sandbox.org.size}, "
              f"crm {sandbox.org.crm}).\n# Credentials come from the environment: "
              f"{', '.join(sandbox.credentials)} (values printed by `dealsync sandbox`).\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path


def _cmd_sandbox(args) -> int:
    with Sandbox(seed=args.seed, size=args.size, crm=args.crm, salesforce_port=args.port) as sandbox:
        for emulator in sandbox.emulators:
            console.print(f"{emulator.name} emulator: {emulator.url}  (CA: {sandbox.ca.ca_path})")
        console.print(f"Simulated now: {sandbox.now.isoformat()}; advance with "
                      f"POST <emulator>/__sandbox/advance {{\"days\": 7}}")
        if args.write_config:
            write_sandbox_config(sandbox, args.write_config, DEMO_DIR / "warehouse.duckdb")
            console.print(f"Wrote {args.write_config}. Before `dealsync run`, export:")
            for name, value in sandbox.credentials.items():
                console.print(f"export {name}={shlex.quote(value)}", highlight=False, soft_wrap=True)
        console.print("Serving until Ctrl-C.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("Stopping.")
    return 0


def _cmd_run(args) -> int:
    config = load_config(args.config, args.warehouse)
    outcome = _run(args, args.config, args.warehouse)
    return 130 if outcome is None else _report(outcome, open_warehouse(config), args.verbose)


def _run(args, config_path: Path, warehouse_path: Path | None) -> RunOutcome | None:
    """The full chain with its log lines on the terminal and in the log file; None if stopped."""
    logs.configure(err_console, args.log_file, args.verbose)
    log.info(f"run started: config {config_path}; log file {args.log_file}")
    # A service manager stops with SIGTERM: treat it as Ctrl-C, which Dagster turns into a run
    # that ends (marked failed, nothing published) instead of a process killed mid-write.
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        with err_console.status("Running the full chain through Dagster..."):
            return run_job(config_path, warehouse_path)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]: the run stopped; the warehouse keeps its last published "
                          "version, and the next run continues from there", highlight=False)
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _cmd_demo(args) -> int:
    warehouse_path = DEMO_DIR / "warehouse.duckdb"
    # The demo's warehouse is its own: start clean, so a different seed never mixes two orgs.
    warehouse_path.unlink(missing_ok=True)
    shutil.rmtree(writer_dir(warehouse_path), ignore_errors=True)
    with console.status(f"Starting the sandbox (seed {args.seed}, size {args.size})..."):
        sandbox = Sandbox(seed=args.seed, size=args.size, crm=args.crm, workdir=DEMO_DIR / "sandbox").start()
    try:
        sandbox.export_credentials()
        config_path = write_sandbox_config(sandbox, DEMO_DIR / "sandbox" / "dealsync.yaml", warehouse_path)
        outcome = _run(args, config_path, warehouse_path)
    finally:
        sandbox.stop()
    if outcome is None:
        return 130
    code = _report(outcome, open_warehouse(load_config(config_path, warehouse_path)), args.verbose)
    if code == 0:
        console.print(f"Warehouse: {warehouse_path.resolve()}  (open it with duckdb, even while a run goes on: "
                      "runs replace it only when they succeed; schemas raw_salesforce, raw_hubspot, raw_google, "
                      "model, metrics)")
        config = load_config(config_path, warehouse_path)
        report = write_report(open_warehouse(config), DEMO_DIR / "report.html",
                              currency_symbol(config.metrics.currency.reporting))
        console.print(f"Report: {report.resolve()}", highlight=False, soft_wrap=True)
    return code


def _cmd_migrate(args) -> int:
    config = load_config(args.config, args.warehouse)
    if _no_warehouse(config, "migrate"):
        return 1
    published = open_warehouse(config)
    # Through the writer like any run: never beside another run, and published as one version.
    with writing(published, new_holder(str(uuid.uuid4())), "migrate", config.warehouse.writer_wait_minutes * 60,
                 on_wait=lambda message: err_console.print(message, highlight=False)) as session:
        try:
            applied = migrate(session.warehouse)
        except MigrationError as exc:
            session.finish(Outcome(False, [str(exc)]))
            err_console.print("[red]schema migration error[/]", highlight=False)
            err_console.print(str(exc), highlight=False, markup=False)
            return 1
        session.finish(Outcome(True))
    if applied:
        console.print(f"Applied schema migrations: {', '.join(map(str, applied))}", highlight=False)
    else:
        console.print("Nothing to apply: the warehouse is up to date.", highlight=False)
    console.print(f"Warehouse schema version: {schema_version(published)}", highlight=False)
    return 0


def _no_warehouse(config, command: str) -> bool:
    """A missing DuckDB file would be created empty by opening it: say so instead (a typo in a
    path must not look like an empty warehouse)."""
    if config.warehouse.backend != "duckdb" or config.warehouse.path.is_file():
        return False
    hint = "run `dealsync run` first" if command == "report" else "check the path, or run `dealsync run` to create it"
    err_console.print(f"[red]no warehouse at {config.warehouse.path}[/]: {hint}", highlight=False)
    return True


def _cmd_report(args) -> int:
    config = load_config(args.config, args.warehouse)
    if _no_warehouse(config, "report"):
        return 1
    path = write_report(open_warehouse(config), args.out, currency_symbol(config.metrics.currency.reporting))
    console.print(str(path.resolve()), highlight=False, soft_wrap=True)
    return 0


def _report(outcome: RunOutcome, warehouse: Warehouse, verbose: bool = False) -> int:
    if not outcome.success:
        what = f"run {outcome.run_id[:8]} failed" if outcome.run_id else "run not started"
        err_console.print(f"[red]{what}[/]:", highlight=False)
        for line in outcome.failures:
            err_console.print(f"  {line}", highlight=False, markup=False)
        for detail in outcome.details:
            log.debug(detail)            # the log file always; the terminal with --verbose
        if outcome.details and not verbose:
            err_console.print("(tracebacks: --verbose, or the log file)", highlight=False)
        return 1
    print_summary(outcome, warehouse, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())

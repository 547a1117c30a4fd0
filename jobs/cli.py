"""The `dealsync` command.

  dealsync sandbox [--seed N] [--size small|medium|large] [--write-config FILE]
  dealsync run     [--config FILE] [--warehouse PATH]
  dealsync demo    [--seed N]
  dealsync migrate [--config FILE] [--warehouse PATH]
  dealsync report  [--config FILE] [--warehouse PATH] [--out report.html]

Errors print as one clear message and exit 1; no tracebacks for problems the
user can fix (bad config, unreachable server, refused login).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from pathlib import Path

import yaml
from rich.console import Console

from jobs.config import ConfigError, load_config, open_warehouse
from jobs.report import currency_symbol, write_report
from jobs.runner import RunOutcome, run_job
from jobs.summary import print_summary
from pipeline_model.migrations import MigrationError, migrate, schema_version
from pipeline_model.stages import SALESFORCE_STANDARD
from pipeline_model.warehouse import Warehouse
from sandbox.runner import Sandbox

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
    run.set_defaults(handler=_cmd_run)

    demo = sub.add_parser("demo", help="sandbox + full chain into .dealsync/warehouse.duckdb + summary")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--size", choices=["small", "medium", "large"], default="small")
    demo.add_argument("--crm", choices=CRM_MODES, default="both", help="where the sandbox org lives")
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
    with console.status("Running the full chain through Dagster..."):
        outcome = run_job(args.config, args.warehouse)
    return _report(outcome, open_warehouse(config))


def _cmd_demo(args) -> int:
    warehouse_path = DEMO_DIR / "warehouse.duckdb"
    # The demo's warehouse is its own: start clean, so a different seed never mixes two orgs.
    warehouse_path.unlink(missing_ok=True)
    with console.status(f"Starting the sandbox (seed {args.seed}, size {args.size})..."):
        sandbox = Sandbox(seed=args.seed, size=args.size, crm=args.crm, workdir=DEMO_DIR / "sandbox").start()
    try:
        sandbox.export_credentials()
        config_path = write_sandbox_config(sandbox, DEMO_DIR / "sandbox" / "dealsync.yaml", warehouse_path)
        with console.status("Running the full chain through Dagster..."):
            outcome = run_job(config_path, warehouse_path)
    finally:
        sandbox.stop()
    code = _report(outcome, open_warehouse(load_config(config_path, warehouse_path)))
    if code == 0:
        console.print(f"Warehouse: {warehouse_path.resolve()}  (open it with duckdb; schemas raw_salesforce, "
                      "raw_hubspot, raw_google, model, metrics)")
        config = load_config(config_path, warehouse_path)
        report = write_report(open_warehouse(config), DEMO_DIR / "report.html",
                              currency_symbol(config.metrics.currency.reporting))
        console.print(f"Report: {report.resolve()}", highlight=False, soft_wrap=True)
    return code


def _cmd_migrate(args) -> int:
    warehouse = open_warehouse(load_config(args.config, args.warehouse))
    try:
        applied = migrate(warehouse)
    except MigrationError as exc:
        err_console.print("[red]schema migration error[/]", highlight=False)
        err_console.print(str(exc), highlight=False, markup=False)
        return 1
    if applied:
        console.print(f"Applied schema migrations: {', '.join(map(str, applied))}", highlight=False)
    else:
        console.print("Nothing to apply: the warehouse is up to date.", highlight=False)
    console.print(f"Warehouse schema version: {schema_version(warehouse)}", highlight=False)
    return 0


def _cmd_report(args) -> int:
    config = load_config(args.config, args.warehouse)
    if config.warehouse.backend == "duckdb" and not config.warehouse.path.is_file():
        # Opening a missing DuckDB file would create an empty one: say what to do instead.
        err_console.print(f"[red]no warehouse at {config.warehouse.path}[/]: run `dealsync run` first",
                          highlight=False)
        return 1
    path = write_report(open_warehouse(config), args.out, currency_symbol(config.metrics.currency.reporting))
    console.print(str(path.resolve()), highlight=False, soft_wrap=True)
    return 0


def _report(outcome: RunOutcome, warehouse: Warehouse) -> int:
    if not outcome.success:
        err_console.print(f"[red]run {outcome.run_id[:8]} failed[/]: {outcome.error}", highlight=False)
        return 1
    print_summary(outcome, warehouse, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())

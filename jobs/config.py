"""dealsync.yaml: one validated configuration for every layer.

Each layer owns the model of its own block (connectors their connection settings,
pipeline_model the warehouse and stage ladder); this module only assembles them,
reads the file and turns every problem into one error that names the file and
the field. Relative paths in the file are relative to the file itself.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from connectors.google.settings import GoogleSettings
from connectors.hubspot.settings import HubSpotSettings
from connectors.salesforce.settings import SalesforceSettings
from connectors.secrets import read_secret
from pipeline_model.identity import IdentitySettings
from pipeline_model.metric_settings import ClockSource, MetricSettings
from pipeline_model.privacy import PrivacySettings
from pipeline_model.stages import HUBSPOT_DEFAULT, SALESFORCE_STANDARD, Stage
from pipeline_model.warehouse import Warehouse, WarehouseSettings

DEFAULT_CONFIG = Path("dealsync.yaml")


class SourcesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    salesforce: SalesforceSettings | None = None
    hubspot: HubSpotSettings | None = None
    google: GoogleSettings | None = None


class StagesConfig(BaseModel):
    """Per CRM: its stage name -> canonical stage. A block given here replaces the default."""

    model_config = ConfigDict(extra="forbid")
    salesforce: dict[str, Stage] = Field(default_factory=lambda: dict(SALESFORCE_STANDARD))
    hubspot: dict[str, Stage] = Field(default_factory=lambda: dict(HUBSPOT_DEFAULT))


class DealsyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    sources: SourcesConfig
    stages: StagesConfig = Field(default_factory=StagesConfig)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    def configured_sources(self) -> list[str]:
        return [name for name in SourcesConfig.model_fields if getattr(self.sources, name) is not None]

    def stage_mappings(self) -> dict[str, dict[str, Stage]]:
        return {name: mapping for name, mapping in self.stages if getattr(self.sources, name, None) is not None}


def privacy_key(config: DealsyncConfig) -> SecretStr | None:
    """The privacy key (None in keep mode), read from the variable privacy.key_env names."""
    privacy = config.privacy
    return None if privacy.personal_fields == "keep" else read_secret(privacy.key_env, "privacy key")


def open_warehouse(config: DealsyncConfig) -> Warehouse:
    """The configured warehouse, with its password (if any) read from the environment."""
    pg = config.warehouse.postgres
    needs_password = config.warehouse.backend == "postgres" and pg.password_env
    return Warehouse(config.warehouse, read_secret(pg.password_env, "PostgreSQL password") if needs_password else None)


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


def load_config(path: Path | str = DEFAULT_CONFIG, warehouse_path: Path | str | None = None) -> DealsyncConfig:
    path = Path(path)
    raw = _read_yaml(path)
    try:
        config = DealsyncConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None
    if not config.configured_sources():
        raise ConfigError(f"{path}: sources: configure at least one source (e.g. sources.salesforce)")
    _resolve_paths(config, path.parent, warehouse_path)
    return config


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found "
                          "(create one, or run `dealsync sandbox --write-config dealsync.yaml`)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return raw


def _describe(path: Path, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        detail = err["msg"]
        # Echo the offending value only when it cannot be a secret pasted in the wrong place.
        if err["type"] not in ("extra_forbidden", "missing", "string_pattern_mismatch") \
                and isinstance(err.get("input"), (str, int, float, bool)) and not field.endswith("_env"):
            detail += f" (got {err['input']!r})"
        if err["type"] == "extra_forbidden":
            detail = "unknown setting (check the spelling; secrets go in environment variables, named by *_env settings)"
        problems.append(f"  {field}: {detail}")
    return f"{path}: invalid configuration\n" + "\n".join(problems)


def _resolve_paths(config: DealsyncConfig, base: Path, warehouse_path: Path | str | None) -> None:
    if warehouse_path is not None:
        config.warehouse.path = Path(warehouse_path)
    elif not config.warehouse.path.is_absolute():
        config.warehouse.path = base / config.warehouse.path
    clock = config.metrics.as_of if isinstance(config.metrics.as_of, ClockSource) else None
    for holder in (config.sources.salesforce, config.sources.hubspot, config.sources.google, clock):
        if holder and holder.ca_bundle and not holder.ca_bundle.is_absolute():
            holder.ca_bundle = base / holder.ca_bundle

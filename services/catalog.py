"""The models this app runs: one folder per model under ``models/`` (``models/<name>/model.yaml``), read at start.

Each spec is checked on its own (``ml.spec.load_spec``): a spec with problems disables that model only, with every
problem kept (file, key, line, expected, found) for the log, the API and the dashboard; the other models run. The
settings give what a spec leaves out (confidence, drift thresholds, API-test limits, schedule).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from backends.settings import Settings, current
from messages.enums import SpecStatus
from ml.spec import ModelSpec, SpecDefaults, SpecError, load_spec, spec_folders

log = logging.getLogger(__name__)

#: the app's own model folders (deployed with it)
MODELS_ROOT = Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True)
class ModelEntry:
    """One model folder as loaded: its spec when it is usable, else the problems that disable it."""

    name: str
    folder: Path
    spec: ModelSpec | None = None
    problems: tuple[str, ...] = ()

    @property
    def status(self) -> SpecStatus:
        return SpecStatus.OK if self.spec is not None else SpecStatus.ERROR


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelEntry]
    default: str

    def usable(self) -> list[ModelSpec]:
        return [e.spec for e in self.models.values() if e.spec is not None]

    def disabled(self) -> list[ModelEntry]:
        return [e for e in self.models.values() if e.spec is None]

    def spec(self, name: str) -> ModelSpec | None:
        """The model's spec, or None when there is no such model or its spec is disabled."""
        entry = self.models.get(name)
        return entry.spec if entry else None

    def why_not(self, name: str) -> str:
        """Why ``name`` cannot run (empty when it can): no such model, or its spec's problems."""
        entry = self.models.get(name)
        if entry is None:
            known = ", ".join(sorted(self.models)) or "none"
            return f"no model {name!r} (models: {known})"
        if entry.spec is None:
            return f"model {name!r} is disabled: its spec has problems: " + "; ".join(entry.problems)
        return ""


def defaults(settings: Settings) -> SpecDefaults:
    production = settings.PROD_API_TEST_MAX_P99_MS
    return SpecDefaults(
        confidence=settings.PROMOTION_CONFIDENCE,
        min_improvement=settings.PROMOTION_MIN_IMPROVEMENT,
        regression_metric=settings.PROMOTION_METRIC,
        r2_floor=settings.PROMOTION_R2_FLOOR,
        psi=settings.DRIFT_PSI_THRESHOLD,
        ks_pvalue=settings.DRIFT_KS_PVALUE,
        schedule=settings.RETRAIN_SCHEDULE,
        max_p99_ms=settings.API_TEST_MAX_P99_MS,
        production_max_p99_ms=float(production) if production else None,
        max_error_rate=settings.API_TEST_MAX_ERROR_RATE,
    )


def load_catalog(root: Path, settings: Settings) -> Catalog:
    """Every model folder under ``root``; never raises for a bad spec (that model is disabled, the error logged)."""
    found: dict[str, ModelEntry] = {}
    spec_defaults = defaults(settings)
    for folder in spec_folders(root):
        try:
            found[folder.name] = ModelEntry(folder.name, folder, load_spec(folder, spec_defaults))
        except SpecError as exc:
            found[folder.name] = ModelEntry(folder.name, folder, problems=tuple(exc.problems))
            log.error("model %s disabled: %s", folder.name, exc)
    return Catalog(found, settings.MODEL_NAME)


class ModelDisabled(ValueError):
    """A model whose spec has problems runs nothing until its spec is fixed (a permanent error: no retry helps)."""


def spec_of(model_name: str, models: Catalog | None = None) -> ModelSpec | None:
    """The spec a model other than the default runs by; None for the default model, which runs by its own recipe
    (``ml.schema``'s contract, the settings' policies). ``ModelDisabled`` for a model that cannot run."""
    models = models or catalog()
    if model_name == models.default:
        return None
    spec = models.spec(model_name)
    if spec is None:
        raise ModelDisabled(models.why_not(model_name))
    return spec


def spec_path(spec: ModelSpec) -> str:
    """Where a training job finds the spec: relative to the app (the job's code root, here and on Azure ML) for the
    app's own models, else the folder itself."""
    try:
        return spec.folder.resolve().relative_to(MODELS_ROOT.parent).as_posix()
    except ValueError:
        return str(spec.folder.resolve())


@cache
def catalog() -> Catalog:
    """The app's models, loaded once per process (at start, from ``function_app``)."""
    return load_catalog(MODELS_ROOT, current())

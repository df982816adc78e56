"""Experiments: discovery, configuration, running, results layout and the summary page.

An experiment is a Python module in the repository's ``experiments/`` folder (or a folder
given with ``--experiments`` / ``DIFFPROG_EXPERIMENTS``) that defines

- ``Config``: a frozen dataclass deriving from :class:`ExperimentConfig` whose defaults are
  the full size,
- ``QUICK``: a dict of field overrides giving the quick size (seconds on 2 CPU cores),
- ``DESCRIPTION``: one line,
- ``main(cfg) -> dict`` returning ``{"headline": {...}, "metrics": {...},
  "figures": [...], "data_source": "..."}``; figures are PNG files it wrote into
  ``cfg.out_dir``.

:func:`run_experiment` builds the config, runs ``main``, and writes
``<out>/<name>/metrics.json`` (numbers, config, versions, data source, wall time)
atomically; :func:`build_index` writes ``<out>/index.html``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import html
import importlib.util
import json
import os
import platform
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

from diffprog._io import atomic_open
from diffprog._version import __version__


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Fields every experiment config has.

    Attributes:
      seed: master random seed.
      out_dir: folder for this experiment's results (set by the runner).
      quick: True when running at the quick size.
    """

    seed: int = 0
    out_dir: str = "results/experiment"
    quick: bool = False

    def check_positive(self, *names: str) -> None:
        """Raise ``ValueError`` naming any field (int, float or tuple) that is not > 0."""
        for name in names:
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            if not values or any(v <= 0 for v in values):
                raise ValueError(f"{name} must be positive, got {value!r}")

    def check_choices(self, name: str, allowed: tuple[str, ...]) -> None:
        """Raise ``ValueError`` unless every entry of field ``name`` is in ``allowed``."""
        value = getattr(self, name)
        values = value if isinstance(value, tuple) else (value,)
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ValueError(f"{name}: {bad or 'empty'} not allowed; choose from {allowed}")


class ExperimentError(ValueError):
    """Bad experiment name, option or module (reported by the CLI as one line, exit 2)."""


# ----------------------------------------------------------------------------- discovery


def default_experiments_dir() -> Path:
    """``$DIFFPROG_EXPERIMENTS``, else ``./experiments``, else the checkout's own folder."""
    env = os.environ.get("DIFFPROG_EXPERIMENTS")
    if env:
        return Path(env)
    here = Path.cwd() / "experiments"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "experiments"


def discover(directory: str | os.PathLike | None = None) -> dict[str, Path]:
    """Map experiment names to their files (``*.py`` or packages with ``__init__.py``)."""
    directory = Path(directory) if directory is not None else default_experiments_dir()
    if not directory.is_dir():
        raise ExperimentError(
            f"no experiments folder at {directory}; run from the repository root or pass "
            "--experiments PATH"
        )
    found = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py":
            found[path.stem] = path
        elif path.is_dir() and (path / "__init__.py").exists():
            found[path.name] = path / "__init__.py"
    return found


def load(name: str, directory: str | os.PathLike | None = None) -> types.ModuleType:
    """Import experiment ``name`` from the experiments folder."""
    available = discover(directory)
    if name not in available:
        raise ExperimentError(
            f"unknown experiment {name!r}; available: {', '.join(available) or 'none'}"
        )
    path = available[name]
    modname = f"diffprog_experiments.{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(
        modname,
        path,
        submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None,
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[modname]
        raise
    for attr in ("Config", "main"):
        if not hasattr(module, attr):
            raise ExperimentError(f"experiment {name!r} ({path}) defines no {attr}")
    return module


# ----------------------------------------------------------------------------- configs


def _parse_value(hint: Any, text: str) -> Any:
    """Parse ``text`` as the annotated type (int, float, bool, str, tuples, optionals)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if text.lower() in ("none", "null") and len(non_none) < len(args):
            return None
        hint = non_none[0]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if hint in (int, float, str):
        return hint(text)
    if origin is tuple:
        elem = args[0] if args else str
        parts = [p for p in text.split(",") if p.strip()]
        return tuple(_parse_value(elem, p.strip()) for p in parts)
    return text


def make_config(
    module: types.ModuleType,
    *,
    quick: bool = False,
    overrides: dict[str, str] | None = None,
    seed: int | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Any:
    """Build ``module.Config`` at full or quick size with ``key=value`` text overrides."""
    cls = module.Config
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = dict(getattr(module, "QUICK", {})) if quick else {}
    values["quick"] = quick
    for key, text in (overrides or {}).items():
        if key not in fields:
            raise ExperimentError(
                f"--set {key}={text}: {module.__name__.split('.')[-1]} has no option {key!r}; "
                f"options: {', '.join(sorted(fields))}"
            )
        try:
            values[key] = _parse_value(hints[key], text)
        except ValueError as exc:
            raise ExperimentError(
                f"--set {key}={text}: bad value for {key} ({hints[key]}): {exc}"
            ) from None
    if seed is not None:
        values["seed"] = seed
    if out_dir is not None:
        values["out_dir"] = str(out_dir)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ExperimentError(f"invalid configuration: {exc}") from None


def config_hash(cfg: Any) -> str:
    """Short hash of a config's fields (minus ``out_dir``), to key checkpoints."""
    d = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "out_dir"}
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]


def checkpoint_dir(cfg: Any, name: str) -> str:
    """Checkpoint folder for one training run of an experiment, keyed by its config."""
    return str(Path(cfg.out_dir) / "checkpoints" / f"{name}-{config_hash(cfg)}")


def train_config(cfg: Any, name: str, **overrides: Any):
    """The :class:`~diffprog.train.TrainConfig` of one training run of an experiment.

    Reads ``cfg.steps``, ``cfg.batch_size`` and ``cfg.evals`` (evaluations per run); logs
    and evaluates ``evals`` times, checkpoints five times into :func:`checkpoint_dir`, and
    labels the progress bar ``<experiment>/<name>``. ``overrides`` replace any field.
    """
    from diffprog.train import TrainConfig

    every = max(cfg.steps // cfg.evals, 1)
    fields = dict(
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        log_every=every,
        eval_every=every,
        checkpoint_every=max(cfg.steps // 5, 1),
        checkpoint_dir=checkpoint_dir(cfg, name),
        desc=f"{Path(cfg.out_dir).name}/{name}",
    )
    fields.update(overrides)
    return TrainConfig(**fields)


# ----------------------------------------------------------------------------- running


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    with atomic_open(path, "w") as fh:
        json.dump(data, fh, indent=2, default=_json_default)
        fh.write("\n")
    return path


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if hasattr(obj, "tolist"):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import jax

    return {
        "diffprog_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    out: str | os.PathLike = "results",
    seed: int | None = None,
    overrides: dict[str, str] | None = None,
    directory: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run experiment ``name`` and write ``<out>/<name>/metrics.json``; return that record."""
    module = load(name, directory)
    out_dir = Path(out) / name
    cfg = make_config(module, quick=quick, overrides=overrides, seed=seed, out_dir=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = module.main(cfg)
    wall = time.perf_counter() - t0
    if not isinstance(result, dict):
        raise ExperimentError(f"experiment {name!r}: main(cfg) must return a dict")
    record = {
        "experiment": name,
        "description": getattr(module, "DESCRIPTION", ""),
        "headline": result.get("headline", {}),
        "metrics": result.get("metrics", {}),
        "figures": list(result.get("figures", [])),
        "tables": result.get("tables", {}),
        "data_source": result.get("data_source", "not stated"),
        "config": dataclasses.asdict(cfg),
        "size": "quick" if quick else "full",
        "wall_time_s": round(wall, 3),
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **environment(),
    }
    write_json(out_dir / "metrics.json", record)
    return record


# ----------------------------------------------------------------------------- summary page


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def build_index(out: str | os.PathLike = "results") -> Path:
    """Write ``<out>/index.html``: every experiment's headline numbers and figures."""
    out = Path(out)
    records = []
    for metrics in sorted(out.glob("*/metrics.json")):
        try:
            records.append(json.loads(metrics.read_text()))
        except json.JSONDecodeError:
            records.append({"experiment": metrics.parent.name, "error": "unreadable metrics.json"})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>diffprog results</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em;color:#222}h2{border-bottom:1px solid #ccc;padding-top:1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;"
        "padding:.25em .6em;text-align:left}th{background:#f4f4f4}"
        "img{max-width:100%;border:1px solid #eee;margin:.3em 0}.meta{color:#666;"
        "font-size:.9em}</style></head><body>",
        "<h1>diffprog results</h1>",
        f"<p class='meta'>{len(records)} experiment(s) in this folder. "
        "Each section lists the headline numbers from <code>metrics.json</code>.</p>",
    ]
    if records:
        parts.append(
            "<table><tr><th>experiment</th><th>size</th><th>headline</th><th>wall time</th></tr>"
        )
        for r in records:
            head = "; ".join(f"{k} = {_fmt(v)}" for k, v in r.get("headline", {}).items())
            parts.append(
                f"<tr><td><a href='#{html.escape(r['experiment'])}'>{html.escape(r['experiment'])}"
                f"</a></td><td>{_fmt(r.get('size', ''))}</td><td>{head}</td>"
                f"<td>{_fmt(r.get('wall_time_s', ''))} s</td></tr>"
            )
        parts.append("</table>")
    for r in records:
        name = r["experiment"]
        parts.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>")
        if r.get("error"):
            parts.append(f"<p>{html.escape(r['error'])}</p>")
            continue
        parts.append(f"<p>{html.escape(r.get('description', ''))}</p>")
        parts.append(
            f"<p class='meta'>data: {html.escape(str(r.get('data_source', '')))} · size: "
            f"{_fmt(r.get('size', ''))} · wall time {_fmt(r.get('wall_time_s', ''))} s · "
            f"diffprog {_fmt(r.get('diffprog_version', ''))}, jax {_fmt(r.get('jax_version', ''))}"
            f" on {_fmt(r.get('backend', ''))} · <a href='{html.escape(name)}/metrics.json'>"
            "metrics.json</a></p>"
        )
        headline = r.get("headline", {})
        if headline:
            parts.append("<table>")
            for k, v in headline.items():
                parts.append(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>")
            parts.append("</table>")
        for title, rows in r.get("tables", {}).items():
            if not rows:
                continue
            cols = list(dict.fromkeys(k for row in rows for k in row))
            parts.append(f"<p><b>{html.escape(title)}</b></p><table><tr>")
            parts.extend(f"<th>{html.escape(c)}</th>" for c in cols)
            parts.append("</tr>")
            for row in rows:
                cells = "".join(f"<td>{_fmt(row.get(c, ''))}</td>" for c in cols)
                parts.append(f"<tr>{cells}</tr>")
            parts.append("</table>")
        for fig in r.get("figures", []):
            src = f"{name}/{fig}"
            parts.append(f"<div><img src='{html.escape(src)}' alt='{html.escape(fig)}'></div>")
    parts.append("</body></html>")
    index = out / "index.html"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(index, "w") as fh:
        fh.write("\n".join(parts))
    return index


def figure(*args: Any, **kwargs: Any) -> Any:
    """A new matplotlib figure on the non-interactive Agg canvas (works headless)."""
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    return Figure(*args, **kwargs)


def save_figure(fig: Any, cfg: Any, filename: str) -> str:
    """Save a matplotlib figure as PNG into ``cfg.out_dir`` (atomically); return the name."""
    with atomic_open(Path(cfg.out_dir) / filename, "wb") as fh:
        fig.savefig(fh, dpi=110, bbox_inches="tight", format="png")
    return filename

"""The search space as Optuna sees it: distributions, samplers and the objectives' directions.

Optuna's categorical values must be scalars, so a choice such as a list of layer widths is stored
as its JSON text and decoded when a trial's configs are built (:func:`decode`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from trigger.contracts import DSP_LUT_WEIGHT  # noqa: F401  (defined with the trial record it weighs)
from trigger.scan.config import Param, ScanConfig


def _encode(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value)


def decode(param: Param, value: Any) -> Any:
    """A value Optuna stored -> the config value (JSON-decoded for non-scalar choices)."""
    if param.choices is not None and isinstance(value, str) and value not in param.choices:
        return json.loads(value)
    return value


def suggest(trial: Any, name: str, param: Param) -> Any:
    """Draw ``name`` for an Optuna trial (ask interface) and return the decoded config value."""
    if param.choices is not None:
        return decode(param, trial.suggest_categorical(name, [_encode(c) for c in param.choices]))
    if param.is_int:
        step = int(param.step or 1)
        return trial.suggest_int(name, int(param.low), int(param.high), step=step, log=param.log)
    value = trial.suggest_float(name, float(param.low), float(param.high), step=param.step, log=param.log)
    return round(value, 10)  # a stepped draw (0.1 * 6 = 0.6000000000000001) reads as its grid value


def grid(param: Param) -> list[Any]:
    """Every value of a dimension for the grid sampler (``choices``, or the range at its step)."""
    if param.choices is not None:
        return [_encode(c) for c in param.choices]
    values = np.arange(param.low, param.high + param.step / 2, param.step)
    return [int(v) for v in values] if param.is_int else [round(float(v), 12) for v in values]


def grid_size(scan: ScanConfig) -> int:
    """The number of points in the grid sampler's grid (the product of each dimension's values)."""
    return math.prod(len(grid(p)) for p in scan.space.values())


def objective_names(scan: ScanConfig) -> list[str]:
    """What each trial reports to the sampler, in order: the metric (maximised), then costs."""
    names = ["metric"]
    names += ["cost"] if scan.objectives.resources == "combined" else ["LUT", "DSP", "FF"]
    return names + (["latency_ns"] if scan.objectives.latency else [])


def directions(scan: ScanConfig) -> list[str]:
    """Optuna's directions for :func:`objective_names`."""
    return ["maximize"] + ["minimize"] * (len(objective_names(scan)) - 1)


def batch_seed(seed: int, batch_index: int) -> int:
    """The sampler seed of one batch: a fresh sampler per batch makes a resumed scan propose what an
    uninterrupted one would have proposed (the sampler's state is the study's history and this seed)."""
    return int(np.random.SeedSequence([seed, batch_index]).generate_state(1)[0])


def make_sampler(scan: ScanConfig, batch_index: int, constraints: Any) -> Any:
    """The Optuna sampler the config names, seeded for ``batch_index``."""
    import optuna

    seed = batch_seed(scan.seed, batch_index)
    kind = scan.search.sampler
    if kind == "grid":
        return optuna.samplers.GridSampler({k: grid(p) for k, p in scan.space.items()}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints, multivariate=True,
                                          n_startup_trials=scan.search.batch)
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=scan.search.batch,
                                         constraints_func=constraints)

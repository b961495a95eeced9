"""The sweep a ``JobConfig`` describes: config parameters, data-file parameters, compound ones,
and their grid, serialised with upstream joshpy's keys.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joshreg.errors import InvalidArgumentError


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars become Python lists and numbers (without importing NumPy)."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) and not isinstance(value, (list, tuple, str)) else value


def _linspace(start: float, stop: float, num: int) -> list[float]:
    # The same arithmetic as numpy.linspace, so rendered configs (and run hashes) agree with
    # upstream, which uses NumPy when it is installed.
    if num < 0:
        raise InvalidArgumentError(f"range 'num' must be >= 0, got {num}")
    if num <= 1:
        return [float(start)][:num]
    step = (stop - start) / (num - 1)
    values = [float(i * step + start) for i in range(num)]
    values[-1] = float(stop)  # exactly stop, as NumPy does
    return values


def _arange(start: Any, stop: Any, step: Any) -> list[Any]:
    # The same arithmetic as numpy.arange: length ceil((stop - start) / step); the first two
    # values are start and start + step, later ones start + i * ((start + step) - start).
    if step == 0:
        raise InvalidArgumentError("range 'step' must not be 0")
    if any(isinstance(v, float) for v in (start, stop, step)):
        start, stop, step = float(start), float(stop), float(step)
    length = max(0, math.ceil((stop - start) / step))
    if length <= 2:
        return [start, start + step][:length]
    delta = (start + step) - start
    return [start, start + step, *(start + i * delta for i in range(2, length))]


def expand_values(values: Any) -> list[Any]:
    """A sweep parameter's values as a plain list.

    Accepts a list or tuple, a NumPy array, a single value, or a range spec: ``{"start": 0,
    "stop": 10, "step": 2}`` (like ``numpy.arange``, stop excluded) or ``{"start": 0, "stop": 1,
    "num": 5}`` (like ``numpy.linspace``, stop included). ``start`` defaults to 0.
    """
    if isinstance(values, Mapping):
        if "stop" not in values:
            raise InvalidArgumentError(f"a range spec needs 'stop': {dict(values)}")
        start = values.get("start", 0)
        if "num" in values:
            return _linspace(start, values["stop"], int(values["num"]))
        if "step" in values:
            return _arange(start, values["stop"], values["step"])
        raise InvalidArgumentError(f"a range spec needs 'step' or 'num': {dict(values)}")
    values = _plain(values)
    if isinstance(values, (list, tuple)):
        return [_plain(v) for v in values]
    return [values]


@dataclass
class ConfigSweepParameter:
    """A template variable swept over a list of values (``name`` as used in the ``.jshc.j2``).

    ``values`` may be a list, a NumPy array or a range spec (see ``expand_values``); a range
    spec is kept in ``range_spec`` and serialised as ``range``, so a stored config stays short.
    """

    name: str
    values: Any = field(default_factory=list)
    range_spec: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.values, Mapping):
            self.range_spec = dict(self.values)
        self.values = expand_values(self.values)

    def to_dict(self) -> dict[str, Any]:
        if self.range_spec:
            return {"name": self.name, "range": dict(self.range_spec)}
        return {"name": self.name, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigSweepParameter:
        if "range" in data:
            return cls(name=data["name"], values=data["range"])
        return cls(name=data["name"], values=data.get("values", []))


@dataclass
class FileSweepParameter:
    """A data file mapping swept over several files, e.g. climate scenarios.

    Each file is labelled by its stem (``rcp45.jshd`` → ``rcp45``); the label is what the
    registry stores as the parameter's value, so stems must be unique.
    """

    name: str
    paths: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.paths = [Path(p) for p in self.paths]
        labels = self.labels
        duplicates = sorted({s for s in labels if labels.count(s) > 1})
        if duplicates:
            raise InvalidArgumentError(
                f"FileSweepParameter '{self.name}' has duplicate stems {duplicates}: "
                "file names must differ so each value has its own label"
            )

    @property
    def labels(self) -> list[str]:
        """The file stems, in order: the values stored for this parameter and its custom tag."""
        return [p.stem for p in self.paths]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "paths": [str(p) for p in self.paths]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileSweepParameter:
        return cls(name=data["name"], paths=list(data.get("paths", [])))


@dataclass
class CompoundSweepParameter:
    """Parameters that vary together (zipped), such as the temperature and precipitation
    files of one climate scenario.

    The group takes part in the grid like a single parameter whose value is a scenario label;
    ``labels`` default to ``"0"``, ``"1"``, ... The label is stored under ``name``.
    """

    name: str
    parameters: list[ConfigSweepParameter | FileSweepParameter] = field(default_factory=list)
    labels: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.parameters:
            return
        lengths = []
        for p in self.parameters:
            if not isinstance(p, (ConfigSweepParameter, FileSweepParameter)):
                raise TypeError(
                    f"CompoundSweepParameter '{self.name}' takes ConfigSweepParameter or "
                    f"FileSweepParameter, got {type(p).__name__}"
                )
            lengths.append(_size(p))
        if len(set(lengths)) > 1:
            sizes = ", ".join(f"{p.name}={n}" for p, n in zip(self.parameters, lengths, strict=True))
            raise InvalidArgumentError(
                f"all parameters of CompoundSweepParameter '{self.name}' must have the same number "
                f"of values; got {sizes}"
            )
        if self.labels is None:
            self.labels = [str(i) for i in range(lengths[0])]
        elif len(self.labels) != lengths[0]:
            raise InvalidArgumentError(
                f"CompoundSweepParameter '{self.name}' has {lengths[0]} scenarios but "
                f"{len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return _size(self.parameters[0]) if self.parameters else 0

    def to_dict(self) -> dict[str, Any]:
        inner = [
            {**p.to_dict(), "_type": "config" if isinstance(p, ConfigSweepParameter) else "file"}
            for p in self.parameters
        ]
        out: dict[str, Any] = {"name": self.name, "parameters": inner}
        # Default index labels are left out; from_dict makes them again.
        if self.labels and any(label != str(i) for i, label in enumerate(self.labels)):
            out["labels"] = list(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompoundSweepParameter:
        parameters: list[ConfigSweepParameter | FileSweepParameter] = []
        for p in data.get("parameters", []):
            body = {k: v for k, v in p.items() if k != "_type"}
            if p.get("_type") == "file" or "paths" in p:
                parameters.append(FileSweepParameter.from_dict(body))
            else:
                parameters.append(ConfigSweepParameter.from_dict(body))
        labels = data.get("labels")
        return cls(name=data["name"], parameters=parameters, labels=None if labels is None else list(labels))

    def scenarios(self) -> list[dict[str, Any]]:
        """One dict per scenario: the label under ``name``, then each inner parameter's value."""
        out = []
        for i, label in enumerate(self.labels or []):
            combo: dict[str, Any] = {self.name: label}
            for p in self.parameters:
                combo.update(_choice(p, i))
            out.append(combo)
        return out


def _size(p: ConfigSweepParameter | FileSweepParameter) -> int:
    return len(p.values) if isinstance(p, ConfigSweepParameter) else len(p.paths)


def _choice(p: ConfigSweepParameter | FileSweepParameter, i: int) -> dict[str, Any]:
    """The i-th value of a parameter as an entry of a combination (files as path + label)."""
    if isinstance(p, FileSweepParameter):
        return {p.name: {"path": p.paths[i], "label": p.labels[i]}}
    return {p.name: p.values[i]}


def _strategy_dict(strategy: Any) -> dict[str, Any] | None:
    """A sweep strategy as upstream serialises it, or None for the default cartesian grid."""
    if strategy is None:
        return None
    data = dict(strategy) if isinstance(strategy, Mapping) else strategy.to_dict()
    return None if data.get("type", "cartesian") == "cartesian" else data


@dataclass
class SweepConfig:
    """The parameters of a sweep; ``expand()`` gives their full grid (cartesian product).

    ``compound_parameters`` enter the grid as one axis each. ``strategy`` is kept for
    compatibility with upstream's adaptive (Optuna) sweeps: it may be upstream's strategy object
    or its dict; it is stored and read back, but only the default cartesian grid is expanded here.
    """

    config_parameters: list[ConfigSweepParameter] = field(default_factory=list)
    file_parameters: list[FileSweepParameter] = field(default_factory=list)
    compound_parameters: list[CompoundSweepParameter] = field(default_factory=list)
    strategy: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.strategy, Mapping) and _strategy_dict(self.strategy) is None:
            self.strategy = None  # an explicit {"type": "cartesian"} is the default

    @property
    def parameters(self) -> list[ConfigSweepParameter]:
        """Upstream's older name for ``config_parameters``."""
        return self.config_parameters

    @property
    def is_adaptive(self) -> bool:
        return _strategy_dict(self.strategy) is not None

    def __bool__(self) -> bool:
        return bool(self.config_parameters or self.file_parameters or self.compound_parameters)

    def __len__(self) -> int:
        self._require_grid()
        sizes = [len(p.values) for p in self.config_parameters]
        sizes += [len(p.paths) for p in self.file_parameters]
        sizes += [len(c) for c in self.compound_parameters]
        return math.prod(sizes)

    def _require_grid(self) -> None:
        if self.is_adaptive:
            kind = (_strategy_dict(self.strategy) or {}).get("type")
            raise InvalidArgumentError(
                f"this sweep uses the adaptive '{kind}' strategy, whose jobs are chosen while it "
                "runs; joshreg expands only cartesian sweeps (use joshpy's run_adaptive_sweep)"
            )

    def expand(self) -> list[dict[str, Any]]:
        """Every parameter combination, first parameter varying slowest.

        A config parameter's entry is its value; a file parameter's is ``{"path": Path,
        "label": stem}``; a compound parameter contributes its label and its inner entries.
        Config parameters come first in the grid, then file parameters, then compounds.
        """
        self._require_grid()
        axes: list[list[dict[str, Any]]] = []
        for p in [*self.config_parameters, *self.file_parameters]:
            axes.append([_choice(p, i) for i in range(_size(p))])
        axes += [c.scenarios() for c in self.compound_parameters]
        combos = []
        for picks in itertools.product(*axes):
            combo: dict[str, Any] = {}
            for pick in picks:
                combo.update(pick)
            combos.append(combo)
        return combos

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.config_parameters:
            out["config_parameters"] = [p.to_dict() for p in self.config_parameters]
        if self.file_parameters:
            out["file_parameters"] = [p.to_dict() for p in self.file_parameters]
        if self.compound_parameters:
            out["compound_parameters"] = [c.to_dict() for c in self.compound_parameters]
        strategy = _strategy_dict(self.strategy)
        if strategy is not None:
            out["strategy"] = strategy
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepConfig:
        config = data.get("config_parameters", data.get("parameters", []))
        return cls(
            config_parameters=[ConfigSweepParameter.from_dict(p) for p in config],
            file_parameters=[FileSweepParameter.from_dict(p) for p in data.get("file_parameters", [])],
            compound_parameters=[
                CompoundSweepParameter.from_dict(c) for c in data.get("compound_parameters", [])
            ],
            strategy=data.get("strategy"),
        )

"""Study specs: a loaded YAML document validated into a typed StudySpec, with presets merged in (files: files.py)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from robustbench_vit.data import check_dataset
from robustbench_vit.errors import UserError, choices
from robustbench_vit.models.reference import REGNETY, regnety_name
from robustbench_vit.models.spec import ModelSpec
from robustbench_vit.models.stems import absolute_ref
from robustbench_vit.study.options import SlurmOptions
from robustbench_vit.train.config import TrialConfig

DESIGNS = ("grid", "random", "quasirandom", "tpe")
# Presets every study has; a study's own `presets:` entry of the same name is merged over these.
BASE_PRESETS: dict[str, dict[str, Any]] = {
    "cifar": {  # GPU: the tiny (32 px) models on CIFAR-10 (--data-root: the folder holding cifar-10-batches-py/)
        "models": ["vit_p_tiny", "vit_c_tiny"], "size": "tiny", "dataset": "cifar10",
        "train": {"batch_size": 256, "epochs": 30, "warmup_epochs": 2, "augment": True, "device": "auto", "amp": True,
                  "threads": None},
        "slurm": {"gpus_per_node": 1, "cpus_per_task": 8, "timeout_min": 120},
    },
    "fashion": {  # CPU: the micro models on Fashion-MNIST (Debian's dataset-fashion-mnist, or --data-root), 16 px;
        # a fixed stratified 5,000-image subset (--set train.train_subset=null: all 60,000) and 6 epochs of batch 64,
        # sized so that `study run lr_sensitivity --preset fashion` takes under 10 minutes on 2 cores (README)
        "dataset": "fashion_mnist", "train": {"train_subset": 5000, "epochs": 6},
    },
    "paper": {  # the paper's ImageNet recipe (DESIGN.md): 1GF and 4GF models at 224 px, --data-root: train/ and val/
        "models": ["vit_p_1gf", "vit_c_1gf", "vit_p_4gf", "vit_c_4gf"], "size": "1gf", "dataset": "imagefolder",
        "train": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.24, "batch_size": 2048, "epochs": 50,
                  "warmup_epochs": 5, "warmup_lr_ratio": 0.1, "min_lr_ratio": 0.005, "label_smoothing": 0.1,
                  "mixup": 0.8, "cutmix": 1.0, "ema_decay": 0.9999, "augment": True, "amp": True,
                  "compile": True, "device": "cuda", "threads": None},
        "slurm": {"gpus_per_node": 8, "ddp": True, "cpus_per_task": 10, "timeout_min": 24 * 60},  # 8-GPU DDP trials
    },
}
FAMILIES = ("vit_p", "vit_c", REGNETY)  # `scale:` keys valid in any study (a preset or --set may drop the model)
# TrialConfig fields a study may fix (`train:`) or search (`space:`); model, data and seed are set by the study.
SETTINGS = tuple(f for f in TrialConfig.model_fields if f not in ("model", "dataset", "data_root", "seed", "init_seed"))


def _only_settings(keys, what: str) -> None:
    """ValueError naming the first key that is not a TrialConfig setting a study may fix or search."""
    bad = sorted(set(keys) - set(SETTINGS))
    if bad:
        raise ValueError(f"{what} {bad[0]!r}; allowed: {choices(SETTINGS)}")


class Dim(BaseModel):
    """One searched hyperparameter: a range (`low`/`high`, `log`, `num` grid values), explicit `values`, or `choices`."""

    model_config = ConfigDict(extra="forbid")

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    num: int | None = Field(None, ge=1)  # grid designs: this many (log-)evenly spaced values in [low, high]
    values: list[int | float] | None = None  # grid designs: explicit values
    choices: list[Any] | None = None  # categorical
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)  # [low, high] per stratum choice

    @model_validator(mode="after")
    def _check(self) -> "Dim":
        """Exactly one of a range, values or choices; ranges must be ordered and positive for log."""
        kinds = [self.low is not None or self.high is not None, self.values is not None, self.choices is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of low/high, values or choices")
        if kinds[0] and (self.low is None or self.high is None):
            raise ValueError("a range needs both low and high")
        for low, high in [(self.low, self.high), *self.ranges.values()] if kinds[0] else self.ranges.values():
            if not low <= high:
                raise ValueError(f"low {low} > high {high}")
            if self.log and low <= 0:
                raise ValueError(f"log ranges need low > 0, got {low}")
        if self.values is not None and not self.values or self.choices is not None and not self.choices:
            raise ValueError("values / choices must not be empty")
        return self


class Design(BaseModel):
    """How points are drawn: grid / random / quasirandom (paired across models) or tpe (adaptive per model)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["grid", "random", "quasirandom", "tpe"] = "grid"
    points: int | None = Field(None, ge=1)  # random / quasirandom: points per stratum; tpe: trials per model
    seeds: int | list[int] = 1  # replicates: a count (seeds 0..n-1) or explicit seeds (plan.setting_seed mixes them)
    seed: int = 0  # the design's seed: the sampler's, and the root of every setting's seed
    stratify: str | None = None  # a categorical dim: the design is drawn once per choice, with per-choice ranges

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        """At least one seed, no repeats."""
        if (v < 1) if isinstance(v, int) else (not v or len(set(v)) != len(v)):
            raise ValueError("seeds must be a count >= 1 or a list of distinct seeds")
        return v

    @property
    def seed_list(self) -> list[int]:
        """The replicate seeds."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class StemEntry(BaseModel):
    """A user stem to compare: `path` is "file.py:Class" or "pkg.mod:Class"."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    options: dict[str, Any] = Field(default_factory=dict)
    depth: int | None = None


class StudySpec(BaseModel):
    """A validated study: models, data, fixed settings, search space, design, SLURM defaults, presets."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    description: str = ""
    models: list[ModelSpec] = Field(default_factory=list)
    size: str | None = None  # size of user stems' models; default: the first built-in model's size
    stems: list[StemEntry] = Field(default_factory=list)
    dataset: str = "digits"
    data_root: str | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, Dim]
    design: Design = Field(default_factory=Design)
    slurm: SlurmOptions = SlurmOptions()
    trials_per_gpu: int | Literal["auto"] = "auto"  # trial processes sharing each GPU (see study/gpus.py)
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    preset: str | None = None
    margins: dict[Literal["area", "retained"], float] = Field(default_factory=dict)  # δ of the three-way decision
    budget: int | None = Field(None, ge=1)  # --until-decided's default budget, settings per model (None: 4× the design)
    reference: Literal["regnety"] | None = None  # a CNN run beside the ViTs: regnety_<size> for each ViT size
    # Per-model multipliers of searched values (the paper's per-model ranges, paired): a model name or family (its name
    # without `_<size>`) → {dim: factor, or {optimizer: factor}}; each model trains at the design's value × factor.
    scale: dict[str, dict[str, float | dict[str, float]]] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)  # --set KEY=VALUE given when it was made (study/overrides.py)
    _source: str = PrivateAttr(default="")

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v: Any) -> Any:
        """Built-in model names become ModelSpecs."""
        if not isinstance(v, list):
            return v
        return [ModelSpec.from_name(m) if isinstance(m, str) else m for m in v]

    @field_validator("margins")
    @classmethod
    def _margins(cls, v: dict[str, float]) -> dict[str, float]:
        """A margin is a positive difference of the statistic (Δ-EDF areas and shares lie in [0, 1])."""
        bad = {k: m for k, m in v.items() if not 0 < m < 1}
        if bad:
            raise ValueError(f"must be between 0 and 1 (exclusive), got {bad}")
        return v

    @field_validator("trials_per_gpu")
    @classmethod
    def _trials_per_gpu(cls, v: int | str) -> int | str:
        """At least one trial per GPU."""
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1 or 'auto', got {v}")
        return v

    @field_validator("train")
    @classmethod
    def _train(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Only TrialConfig settings can be fixed."""
        _only_settings(v, "unknown training setting")
        return v

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, Dim]) -> dict[str, Dim]:
        """Only TrialConfig settings can be searched."""
        _only_settings(v, "cannot search")
        if not v:
            raise ValueError("the search space is empty")
        return v

    @model_validator(mode="after")
    def _check(self) -> "StudySpec":
        """Cross-field rules: stems and timm models sized, design fits the space, no setting both fixed and searched."""
        if any(not m.size for m in self.models):  # timm:NAME takes the study's size, as user stems do
            size = self.size or next((m.size for m in self.models if m.size), None)
            if size is None:
                raise ValueError("field 'size': timm models need a size (or a built-in model to take it from)")
            self.models = [m.sized(size) for m in self.models]
        if self.stems:
            size = self.size or (self.models[0].size if self.models else None)
            if size is None:
                raise ValueError("field 'size': user stems need a size (or a built-in model to take it from)")
            self.models = self.models + [ModelSpec(name=s.name, size=size, stem=s.path, stem_options=s.options,
                                                   depth=s.depth) for s in self.stems]
            self.stems = []
        if self.reference:
            sizes = dict.fromkeys(m.size for m in self.models if m.stem in ("patchify", "conv"))
            have = {m.name for m in self.models}
            self.models += [ModelSpec.from_name(n) for n in map(regnety_name, sizes) if n not in have]
        names = [m.name for m in self.models]
        if not names:
            raise ValueError("field 'models': a study needs at least one model")
        if len(set(names)) != len(names):
            raise ValueError(f"field 'models': model names must be distinct, got {names}")
        self.train = {k: v for k, v in self.train.items() if k not in self.space}  # searched beats fixed
        d = self.design
        if d.kind in ("random", "quasirandom", "tpe") and d.points is None:
            raise ValueError(f"field 'design.points': design kind {d.kind!r} needs it")
        for name, dim in self.space.items():
            if d.kind == "grid" and dim.low is not None and dim.num is None:
                raise ValueError(f"field 'space.{name}': grid designs need num (or values) for a range")
            if d.kind != "grid" and dim.values is not None:
                raise ValueError(f"field 'space.{name}': values are for grid designs; use choices or low/high")
            bad = sorted(set(dim.ranges) - set(self._strata()))
            if bad:
                raise ValueError(f"field 'space.{name}.ranges': {bad[0]!r} is not a choice of design.stratify "
                                 f"({choices(self._strata()) or 'not set'})")
        self._check_scale(names)
        if d.stratify is not None:
            if d.kind == "tpe":
                raise ValueError("field 'design.stratify': does not apply to tpe designs")
            if d.stratify not in self.space or self.space[d.stratify].choices is None:
                cats = [k for k, s in self.space.items() if s.choices is not None]
                raise ValueError(f"field 'design.stratify': {d.stratify!r} is not a categorical dim "
                                 f"({choices(cats) or 'none in space'})")
        return self

    def _check_scale(self, names: list[str]) -> None:
        """Each `scale` key names a model (or family) of the study and scales real-valued searched dims by factors > 0,
        per optimizer where given."""
        optimizers = get_args(TrialConfig.model_fields["optimizer"].annotation)
        for key, dims in self.scale.items():
            if key not in FAMILIES and not any(_in_family(n, key) for n in names):
                raise ValueError(f"field 'scale.{key}': matches no model of the study ({choices(names)}) and is not "
                                 f"a built-in family ({choices(FAMILIES)})")
            for dim, factor in dims.items():
                real = [k for k in self.space if TrialConfig.model_fields[k].annotation is float]
                if dim not in real:
                    raise ValueError(f"field 'scale.{key}.{dim}': not a real-valued searched dim ({choices(real)})")
                per = factor if isinstance(factor, dict) else {"": factor}
                bad = sorted(set(per) - {"", *optimizers})
                if bad:
                    raise ValueError(f"field 'scale.{key}.{dim}': {bad[0]!r} is not an optimizer "
                                     f"({choices(optimizers)})")
                if any(f <= 0 for f in per.values()):
                    raise ValueError(f"field 'scale.{key}.{dim}': factors must be > 0, got {factor}")

    def factors(self, model: str, optimizer: str) -> dict[str, float]:
        """The multipliers of the searched values `model` trains at under `optimizer` (`scale`; {} when none)."""
        out: dict[str, float] = {}
        for key in sorted((k for k in self.scale if _in_family(model, k)), key=len):  # the most specific key wins
            for dim, f in self.scale[key].items():
                f = f.get(optimizer) if isinstance(f, dict) else f
                if f is not None:
                    out[dim] = float(f)
        return out

    def _strata(self) -> list[str]:
        """The choices of the stratifying dim (empty without one)."""
        s = self.design.stratify
        return [str(c) for c in self.space[s].choices or []] if s in self.space else []

    @property
    def source(self) -> str:
        """The file this spec came from (for error messages)."""
        return self._source or self.name

    @property
    def threads(self) -> int | None:
        """The CPU threads each trial is pinned to (`train: {threads: N}`), else None."""
        return self.train.get("threads")

    @property
    def epochs(self) -> int:
        """The epochs a trial trains when the study does not search them (`train: {epochs: N}`, else the default)."""
        return int(self.train.get("epochs", TrialConfig.model_fields["epochs"].default))

    @property
    def device(self) -> str:
        """The device the study's trials ask for (`train: {device: ...}`, default auto)."""
        return self.train.get("device", "auto")

    def fingerprint(self) -> dict[str, Any]:
        """What decides the trials (not models, data location, description, presets or SLURM settings)."""
        include = {"dataset", "train", "space", "design"} | ({"scale"} if self.scale else set())  # as before without
        return self.model_dump(mode="json", include=include)


def _in_family(model: str, key: str) -> bool:
    """Whether `key` names `model` or its family (`regnety` names regnety_micro and its A/A copy regnety_micro_aa1)."""
    return model == key or model.startswith(f"{key}_")


def deep_merge(base: dict, override: dict) -> dict:
    """`base` with `override` merged in: dicts merge recursively, everything else is replaced."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A study document with the overrides set into it (missing parents created)."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = copy.deepcopy(value)
    return out


def override_suffix(overrides: dict[str, Any]) -> str:
    """The name suffix of an overridden study ("" without overrides): `-set-` and 8 hex digits of their hash."""
    if not overrides:
        return ""
    text = json.dumps(overrides, sort_keys=True, default=str)
    return f"-set-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def related_key(overrides: dict[str, Any], loc: str) -> str | None:
    """The override a validation error at field `loc` (dotted) comes from, if any."""
    for key in overrides:
        if key == loc or key.startswith(f"{loc}.") or loc.startswith(f"{key}."):
            return key
    return None


def _fields_at(loc: tuple) -> list[str]:
    """The field names allowed at the parent of `loc` (walks StudySpec's nested models, skipping keys)."""
    cls: type[BaseModel] = StudySpec
    for part in loc[:-1]:
        if isinstance(part, str) and part in cls.model_fields:
            stack = [cls.model_fields[part].annotation]
            while stack:
                t = stack.pop()
                if isinstance(t, type) and issubclass(t, BaseModel):
                    cls = t
                    break
                stack.extend(get_args(t))
    return [f for f in cls.model_fields if f not in ("preset", "overrides")]


def _format_error(source: str, err: ValidationError, overrides: dict[str, Any] | None = None) -> str:
    """One line for the first pydantic error: file (or the --set flag it comes from), field, bad value, allowed
    values."""
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"])
    flag = related_key(overrides or {}, loc)
    where = f"--set {flag}" if flag == loc else f"{source} with --set {flag}: field {loc!r}" if flag else \
        f"{source}: field {loc!r}" if loc else source
    if e["type"] == "literal_error":
        allowed = e["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{where}: {e['input']!r} is not one of {allowed}"
    if e["type"] == "extra_forbidden":
        return f"{where}: unknown field; allowed: {choices(_fields_at(e['loc']))}"
    msg = e["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" + (f" (got {e['input']!r})" if e["type"] not in ("value_error", "missing") else "")


def parse_spec(raw: Any, source: str, preset: str | None = None, *, name: str | None = None,
               overrides: dict[str, Any] | None = None) -> StudySpec:
    """Validate a loaded YAML document (with `preset` merged in, then the --set `overrides`) into a StudySpec;
    one-line UserError otherwise."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping of study fields, got {type(raw).__name__}")
    raw = {"name": name or Path(source).stem, **raw}
    presets = {k: deep_merge(BASE_PRESETS.get(k, {}), v or {}) for k, v in {**dict.fromkeys(BASE_PRESETS, {}),
                                                                             **(raw.get("presets") or {})}.items()}
    raw["presets"] = presets
    raw["stems"] = [{**e, "path": absolute_ref(e["path"], Path(source).parent)}
                    if isinstance(e, dict) and isinstance(e.get("path"), str) else e for e in raw.get("stems") or []]
    if preset is not None:
        if preset not in presets:
            raise UserError(f"{source}: preset {preset!r} is not one of {choices(presets) or '(no presets)'}")
        raw = deep_merge(raw, presets[preset] or {})
        raw["preset"] = preset
        raw["name"] = f"{raw['name']}-{preset}"  # its own results: `report NAME-PRESET`, beside the default's
    if overrides:  # their own results too: NAME[-PRESET]-set-HASH, the overrides stored with the spec
        raw = {**apply_overrides(raw, overrides), "name": raw["name"] + override_suffix(overrides),
               "overrides": overrides}
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as e:
        raise UserError(_format_error(source, e, overrides)) from None
    except UserError as e:  # e.g. an unknown model name
        where = "--set models" if "models" in (overrides or {}) else f"{source}: field 'models'"
        raise UserError(f"{where}: {e}") from None
    spec._source = source + (f" with --set {', '.join(overrides)}" if overrides else "")
    try:
        check_dataset(spec.dataset)
    except UserError as e:
        raise UserError(f"{source}: field 'dataset': {e}") from None
    return spec

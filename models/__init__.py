"""Model architectures, registered by name.

``build(name, input_shape, n_classes, **hparams)`` returns a compiled Keras model or
a scikit-learn estimator; experiments name models by string. Builders live in
:mod:`models.audio`, :mod:`models.video` and :mod:`models.classical`; they are
imported lazily so ``import models`` does not import TensorFlow.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

_SUBMODULES: tuple[str, ...] = ("models.audio", "models.video", "models.faces", "models.classical")


@dataclass(frozen=True)
class ModelSpec:
    """A registered builder and what it consumes.

    ``framework`` is ``"keras"`` or ``"sklearn"``; ``input_kind`` names the feature it
    expects (``mfcc_mean``, ``mfcc_stats``, ``mfcc_matrix``, ``logmel``, ``frames``...).
    """

    name: str
    builder: Callable[..., Any]
    framework: str
    input_kind: str
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, framework: str, input_kind: str, description: str = ""):
    """Decorator registering ``builder(input_shape, n_classes, **hparams)`` under ``name``."""
    if framework not in ("keras", "sklearn"):
        raise ValueError(f"framework must be 'keras' or 'sklearn', not {framework!r}")

    def wrap(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, framework, input_kind, description)
        return builder

    return wrap


def _load_all() -> None:
    from pipeline.core.native import load_before_tensorflow

    load_before_tensorflow()  # builders import Keras; some native libraries must come first
    for module in _SUBMODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a real missing dependency, not an absent module
                raise


def spec(name: str) -> ModelSpec:
    """The registered spec of ``name``."""
    if name not in _REGISTRY:
        _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered: {', '.join(available())}"
        ) from None


def available() -> list[str]:
    """Names of every registered model."""
    _load_all()
    return sorted(_REGISTRY)


def build(name: str, input_shape: tuple[int, ...], n_classes: int, **hparams: Any) -> Any:
    """Build (and for Keras, compile) the model registered as ``name``."""
    from pipeline.core.native import load_before_tensorflow, load_tensorflow

    chosen = spec(name)
    if chosen.framework == "keras":  # TensorFlow imported with its start-up notices held back
        load_tensorflow()
    else:
        load_before_tensorflow()
    return chosen.builder(tuple(input_shape), int(n_classes), **hparams)

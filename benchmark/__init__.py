"""ganbench: a comparative benchmark and mode-collapse study harness for GANs.

The package follows the pipeline, one module (or small package) per stage:

    data -> models -> objectives -> train (the loop) -> evaluation -> study -> report -> regress

Each stage extends through a registry (``benchmark.registry``): a new dataset, model, objective or
metric is one registered class or function.

The Python API (``benchmark/api.py``): ``benchmark.train``, ``benchmark.evaluate``, ``benchmark.run_study`` and
``benchmark.load_results``. They are imported on first use (``__getattr__`` below), so ``import benchmark``
imports no torch and stays as fast as ``ganbench --help``.

``benchmark.train`` is the API's function, although ``benchmark/train.py`` is a module of the same name: the
import system sets a loaded submodule as an attribute of its package, and ``_Package`` refuses that for the
API's names (the module stays ``sys.modules["benchmark.train"]``, and ``from benchmark.train import ...`` works
as before; ``import benchmark.train as m`` would bind the function: use ``importlib.import_module``).
"""

import sys
import types
from typing import Any

__version__ = "0.1.0"
__all__ = ["train", "evaluate", "run_study", "load_results", "__version__"]
_API = ("train", "evaluate", "run_study", "load_results")


def __getattr__(name: str) -> Any:
    if name in _API:
        from benchmark import api  # torch and the evaluator: paid by the first call, never by the import

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'benchmark' has no attribute '{name}'")


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # a submodule named like an API function (benchmark/train.py): the name is the function's
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

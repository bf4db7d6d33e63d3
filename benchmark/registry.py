"""Name -> class/function registries, the extension point of every stage.

    @DATASETS.register("mnist")
    class MNIST(...): ...

An unknown name raises a ``UserError`` that lists the valid names.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from benchmark.errors import UserError, did_you_mean


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def deco(obj: Any) -> Any:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> Any:
        if name not in self._items:
            hint = did_you_mean(name, self._items)
            raise UserError(f"unknown {self.kind} '{name}'{hint}; valid: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> List[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

"""ganbench: a comparative benchmark and mode-collapse study harness for GANs.

The package follows the pipeline, one module (or small package) per stage:

    data -> models -> objectives -> train (the loop) -> evaluation -> study -> report -> regress

Each stage extends through a registry (``benchmark.registry``): a new dataset, model, objective or
metric is one registered class or function.
"""

__version__ = "0.1.0"

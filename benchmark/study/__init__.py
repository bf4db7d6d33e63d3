"""Study runner and report stage: specs (spec.py) -> trials on a pool or Dask (runner.py) -> report.py."""

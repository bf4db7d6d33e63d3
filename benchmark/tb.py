"""TensorBoard event files of a run (config key ``tensorboard: true``, ``ganbench train --tensorboard``), in
``RUN/tb/`` (``rundir.TB_DIR``), through ``torch.utils.tensorboard.SummaryWriter``:

* ``train/<key>`` per step: every scalar of the run's ``log.jsonl`` line at that step (``d_loss``, ``g_loss``,
  ``wdist``, ``gp``, ``grad_norm_mean``, ``grad_norm_std``, ``sec``), written when the log itself is appended
  (every ``log_flush_every`` steps and at each checkpoint), never inside the step;
* ``samples`` at each checkpoint step: the fixed-noise grid (the PNG of ``samples/``, read back);
* ``eval/<score>`` at each scored step: what ``ganbench evaluate`` wrote to ``metrics.jsonl`` for that checkpoint
  (one event file per evaluation, ``*.eval``).

Resume: the training writer of a session that starts at step ``s`` opens a new event file with
``purge_step = s + 1``; TensorBoard (and ``EventAccumulator``) then hide every earlier event at a step after ``s``,
which a killed session may have written past its last checkpoint, so no step is shown twice. Nothing here draws a
random number: a run with TensorBoard on trains the same bits as one without (``tests/test_tensorboard.py``).

``torch.utils.tensorboard`` is imported only when a writer is opened: 0.11 s on top of torch (``python -X importtime
-c "import torch; import torch.utils.tensorboard"``, the shared 2-core machine; 0.13-0.16 s by the wall clock),
which a run with TensorBoard off never pays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import numpy as np
from PIL import Image

from benchmark.rundir import TB_DIR

Writer = Any  # torch.utils.tensorboard.SummaryWriter (imported lazily: see above)


def _writer(run_dir: Path, **kw: Any) -> Writer:
    from torch.utils.tensorboard import SummaryWriter  # 0.11 s: only with TensorBoard on

    return SummaryWriter(str(Path(run_dir) / TB_DIR), **kw)


def open_train(run_dir: Path, start: int, enabled: bool) -> Optional[Writer]:
    """The training session's writer (None when TensorBoard is off); steps after ``start`` are purged."""
    if not enabled:
        return None
    return _writer(run_dir, purge_step=start + 1, filename_suffix=".train")


def scalars(w: Optional[Writer], records: Iterable[Mapping[str, Any]]) -> None:
    """Every numeric value of each log record as ``train/<key>`` at the record's step."""
    if w is None:
        return
    for rec in records:
        for k, v in rec.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                w.add_scalar(f"train/{k}", v, rec["step"])


def grid(w: Optional[Writer], png: Path, step: int) -> None:
    """The sample grid saved at ``step`` as image ``samples``; flushed, with the scalars before it."""
    if w is None:
        return
    with Image.open(png) as im:
        w.add_image("samples", np.asarray(im.convert("RGB")), step, dataformats="HWC")
    w.flush()


def close(w: Optional[Writer]) -> None:
    if w is not None:
        w.close()


def scores(run_dir: Path, step: int, metrics: Dict[str, float]) -> None:
    """The scores of one evaluated checkpoint as ``eval/<name>`` at its step (a new ``*.eval`` event file)."""
    w = _writer(run_dir, filename_suffix=".eval")
    try:
        for k, v in metrics.items():
            w.add_scalar(f"eval/{k}", float(v), step)
    finally:
        w.close()

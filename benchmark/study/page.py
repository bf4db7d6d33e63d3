"""A study's page as data: what a kind's page builds (``Page``) and what every page ends with (``provenance``).

A kind's page (``StudyKind.page``: ``StudyRecords -> Page``) is assembled from section functions, each adding
its Markdown lines, the files it writes beside README.md (tables as Markdown, CSV, LaTeX), its figures and its
notes; ``report.py`` writes them. A new section is a new function in the kind's list of sections.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import torch

from benchmark import io
from benchmark.study.records import StudyRecords


@dataclass
class Page:
    """A page under construction: its sections' lines, the files and figures beside it, its notes."""

    lines: List[str] = field(default_factory=list)
    files: Dict[str, str] = field(default_factory=dict)  # name -> text
    figures: Dict[str, Tuple[Any, Dict[str, Any]]] = field(default_factory=dict)  # name -> (figure, savefig args)
    notes: List[str] = field(default_factory=list)  # shown under "Notes" at the end of the page

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def file(self, name: str, text: str) -> None:
        self.files[name] = text

    def figure(self, name: str, fig: Any, **savefig: Any) -> None:
        self.figures[name] = (fig, savefig)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def notes_section(self) -> None:
        if self.notes:
            self.add("## Notes", "", *[f"- {n}" for n in self.notes], "")


def provenance(recs: StudyRecords) -> List[str]:
    """The command, preset and seeds; the code of the trials, of the scores and of this page; torch, device and
    Python; each dataset's evaluator (a warning when one dataset's scores come from several)."""
    index, used = recs.index, recs.used()
    runs = [t.run_info for t in recs.trials if t.run_info is not None]
    devices = sorted({f"{r.get('device')} ({r.get('device_name')}, {r.get('threads')} threads)" for r in runs})
    torches = sorted({r.get("torch") for r in runs} | {r.get("torch_version") for r in used} - {None})
    commits = sorted({r.get("git_commit") for r in runs} | {r.get("git_commit") for r in used} - {None})
    fidelity = sorted({str(r.get("torch_fidelity_version")) for r in used if r.get("torch_fidelity_version")})
    lines = [
        f"- command: `{index.command}`",
        f"- preset: `{index.preset or 'default'}`; seeds: {sorted({t.seed for t in index.trials})}",
        f"- code of the trials and scores (git commit): {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
        f"- code of this report (git commit): `{io.git_commit()}`",
        f"- torch: {', '.join(torches) or torch.__version__}"
        + (f"; torch-fidelity: {', '.join(fidelity)}" if fidelity else "")  # (records scored before it was kept: none)
        + f"; device: {'; '.join(devices) or 'unknown'}; Python {platform.python_version()}",
    ]
    lines += _evaluator_lines(used)
    if len([c for c in commits if c]) > 1:
        lines.append(f"- **note: trials and scores come from {len(commits)} code versions (listed above)**")
    if any(str(c).endswith("+dirty") for c in commits):
        lines.append("- **note: some trials ran on a tree with uncommitted changes (`+dirty`)**")
    return lines


def _evaluator_lines(used: List[Any]) -> List[str]:
    by_data: Dict[str, set] = {}
    for r in used:
        by_data.setdefault(r.get("dataset", "?"), set()).add(json.dumps(r.get("evaluator"), sort_keys=True))
    lines = []
    for data, evs in sorted(by_data.items()):
        for e in sorted(evs):
            ev = json.loads(e) or {}
            if ev.get("sha256") is None and ev.get("name") == "mixture-geometry":
                lines.append(
                    f"- evaluator for {data}: mixture geometry (mode centres and std of the dataset; no "
                    "network, so no sha256)"
                )
                continue
            lines.append(
                f"- evaluator for {data}: {ev.get('name')} sha256 `{ev.get('sha256')}`; classifier sha256 "
                f"`{ev.get('classifier_sha256')}`; LPIPS backbone: {ev.get('lpips_backbone')}"
            )
        if len(evs) > 1:
            lines.append(
                f"- **warning: {data} scores come from {len(evs)} different evaluators; compare rows with care**"
            )
    return lines


__all__ = ["Page", "provenance"]

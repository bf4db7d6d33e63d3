"""The evaluation stage: the pinned classifier, metrics (torch-fidelity engine, coverage, LPIPS, modes), scoring runs."""

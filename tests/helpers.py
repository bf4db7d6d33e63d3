"""Small things tests import by path (e.g. a user's own model given as 'module:function')."""
import math

from torch import nn

from benchmark.models import MLPCritic


class NaNGenerator(nn.Module):
    """A generator whose samples are NaN: the run must stop as diverged."""

    def __init__(self, cfg, shape, num_classes):
        super().__init__()
        self.shape, self.num_classes, self.lin = tuple(shape), 0, nn.Linear(cfg.z_dim, 1)

    def forward(self, z, y=None):
        out = self.lin(z) * float("nan")
        return out.expand(-1, math.prod(self.shape)).reshape(-1, *self.shape)


def nan_pair(cfg, shape, num_classes):
    return NaNGenerator(cfg, shape, num_classes), MLPCritic(cfg, shape, num_classes)

"""The env's dynamics randomness (spawns, commands, pushes, randomisation), on the simulation's device."""

from __future__ import annotations

import numpy as np
import torch


class Draws:
    """The env's dynamics randomness. On a CPU simulation, numpy's Generator (the streams of every
    earlier version of this env); on a GPU, a torch Generator there (no host round trip).
    Returns tensors on the simulation's device: float64 from numpy, float32 on a GPU."""

    def __init__(self, seed: int, device: torch.device):
        self.device = device
        self._np = np.random.default_rng(seed) if device.type == "cpu" else None
        self._gen = None if self._np is not None else torch.Generator(device=device).manual_seed(seed)

    def uniform(self, low, high, size) -> torch.Tensor:
        if self._np is not None:
            return torch.from_numpy(np.asarray(self._np.uniform(low, high, size), dtype=np.float64))
        u = torch.rand(size, generator=self._gen, device=self.device)
        low = torch.as_tensor(low, dtype=u.dtype, device=self.device)
        high = torch.as_tensor(high, dtype=u.dtype, device=self.device)
        return low + (high - low) * u

    def random(self, k: int) -> torch.Tensor:
        if self._np is not None:
            return torch.from_numpy(self._np.random(k))
        return torch.rand(k, generator=self._gen, device=self.device)

    def integers(self, low: int, high: int, k: int) -> torch.Tensor:
        if self._np is not None:
            return torch.from_numpy(self._np.integers(low, high, k))
        return torch.randint(low, high, (k,), generator=self._gen, device=self.device)

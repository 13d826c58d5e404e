"""Terrain for the MuJoCo backend: flat ground, or one heightfield of difficulty tiles.

The rough terrain follows Isaac Lab's rough-terrain mixture without boxes and stairs: random
rough ground, pyramid slopes and inverted pyramid slopes. It is laid out as a grid of square
tiles in ONE heightfield: row = difficulty level (0 easiest .. config.TERRAIN_LEVELS-1), column
= terrain type. Every simulation of the batch is its own world, so each robot stands on its
own tile and robots never meet. A flat border surrounds the grid so robots that walk off
their tile keep walking.

Heights are in metres, world frame; `height_at` gives the ground height under any (x, y),
which the environment uses for base_height / foot_height and for spawning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness import config

TERRAIN_TYPES = ("random_rough", "pyramid_slope", "inverted_pyramid_slope")
TILE_SIZE = 8.0            # m, as Isaac Lab's sub-terrains
HORIZONTAL_SCALE = 0.1     # m per heightfield sample, as Isaac Lab
BORDER = 20.0              # m of flat ground around the grid (Isaac Lab's border width)
PLATFORM = 2.0             # m, flat square at the centre of a pyramid tile
SLOPE_RANGE = (0.0, 0.4)   # rise over run, easiest .. hardest level (Isaac Lab's range)
ROUGH_RANGE = (0.02, 0.10) # m, max bump height, easiest .. hardest level
ROUGH_STEP = 0.005         # m, bump heights are multiples of this (Isaac Lab's noise_step idea)
ROUGH_DOWNSAMPLE = 2       # samples per random value: bumps 0.2 m wide
TERRAIN_SEED = 12345       # fixed: every run sees the same ground


@dataclass(frozen=True)
class Terrain:
    """Ground description shared by model building and the environment."""

    kind: str                          # "flat" | "rough"
    heights: np.ndarray | None         # (nrow, ncol) m, row index along y, column along x; None if flat
    scale: float = HORIZONTAL_SCALE    # m between samples
    levels: int = 1
    types: int = 1

    @property
    def size_x(self) -> float:
        return 0.0 if self.heights is None else (self.heights.shape[1] - 1) * self.scale

    @property
    def size_y(self) -> float:
        return 0.0 if self.heights is None else (self.heights.shape[0] - 1) * self.scale

    @property
    def origin(self) -> tuple[float, float]:
        """World (x, y) of sample [0, 0]; the heightfield is centred on the world origin."""
        return (-self.size_x / 2.0, -self.size_y / 2.0)

    def tile_centers(self) -> np.ndarray:
        """(levels, types, 2) world (x, y) of every tile's centre; zeros on flat ground."""
        if self.kind == "flat":
            return np.zeros((1, 1, 2))
        ox, oy = self.origin
        lv = np.arange(self.levels)[:, None]
        ty = np.arange(self.types)[None, :]
        x = ox + BORDER + (lv + 0.5) * TILE_SIZE + 0.0 * ty
        y = oy + BORDER + (ty + 0.5) * TILE_SIZE + 0.0 * lv
        return np.stack([x, y], axis=-1)

    def height_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ground height (m) under world points, numpy arrays of any shape; bilinear between
        samples, clamped to the heightfield's edge; 0 on flat ground."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if self.heights is None:
            return np.zeros(np.broadcast(x, y).shape)
        h = self.heights
        ox, oy = self.origin
        fx = np.clip((x - ox) / self.scale, 0.0, h.shape[1] - 1.000001)
        fy = np.clip((y - oy) / self.scale, 0.0, h.shape[0] - 1.000001)
        ix, iy = fx.astype(np.int64), fy.astype(np.int64)
        tx, ty = fx - ix, fy - iy
        h00, h01 = h[iy, ix], h[iy, ix + 1]
        h10, h11 = h[iy + 1, ix], h[iy + 1, ix + 1]
        top = h00 + (h01 - h00) * tx
        bot = h10 + (h11 - h10) * tx
        return top + (bot - top) * ty

    def height_at_torch(self, x, y):
        """height_at for torch tensors, on their device and in their dtype (the env's per-step
        use; the same bilinear rule)."""
        import torch

        if self.heights is None:
            return torch.zeros_like(x)
        key = (x.device, x.dtype)
        cache = self.__dict__.setdefault("_torch_heights", {})  # frozen dataclass: a cache beside the fields
        if key not in cache:
            cache[key] = torch.as_tensor(self.heights, device=x.device, dtype=x.dtype)
        h = cache[key]
        ox, oy = self.origin
        fx = ((x - ox) / self.scale).clamp(0.0, h.shape[1] - 1.000001)
        fy = ((y - oy) / self.scale).clamp(0.0, h.shape[0] - 1.000001)
        ix, iy = fx.long(), fy.long()
        tx, ty = fx - ix, fy - iy
        h00, h01 = h[iy, ix], h[iy, ix + 1]
        h10, h11 = h[iy + 1, ix], h[iy + 1, ix + 1]
        top = h00 + (h01 - h00) * tx
        bot = h10 + (h11 - h10) * tx
        return top + (bot - top) * ty


def flat() -> Terrain:
    return Terrain(kind="flat", heights=None)


def rough(levels: int = config.TERRAIN_LEVELS, seed: int = TERRAIN_SEED) -> Terrain:
    """The rough mixture: levels x len(TERRAIN_TYPES) tiles plus a flat border."""
    rng = np.random.default_rng(seed)
    n = int(round(TILE_SIZE / HORIZONTAL_SCALE))        # samples per tile side
    b = int(round(BORDER / HORIZONTAL_SCALE))
    ntypes = len(TERRAIN_TYPES)
    heights = np.zeros((2 * b + ntypes * n + 1, 2 * b + levels * n + 1))
    for level in range(levels):
        difficulty = level / max(levels - 1, 1)
        for col, kind in enumerate(TERRAIN_TYPES):
            tile = _tile(kind, difficulty, n, rng)
            r0, c0 = b + col * n, b + level * n
            heights[r0:r0 + n, c0:c0 + n] = tile
    return Terrain(kind="rough", heights=heights, levels=levels, types=ntypes)


def _tile(kind: str, difficulty: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random_rough":
        amp = ROUGH_RANGE[0] + difficulty * (ROUGH_RANGE[1] - ROUGH_RANGE[0])
        coarse = n // ROUGH_DOWNSAMPLE
        steps = np.arange(-amp, amp + 1e-9, ROUGH_STEP)
        values = rng.choice(steps, size=(coarse, coarse))
        tile = np.kron(values, np.ones((ROUGH_DOWNSAMPLE, ROUGH_DOWNSAMPLE)))
        # a flat patch at the centre so robots spawn level, as Isaac Lab's platforms
        c, p = n // 2, int(0.5 / HORIZONTAL_SCALE)
        tile[c - p:c + p, c - p:c + p] = 0.0
        return tile
    slope = SLOPE_RANGE[0] + difficulty * (SLOPE_RANGE[1] - SLOPE_RANGE[0])
    coords = (np.arange(n) + 0.5) * HORIZONTAL_SCALE - TILE_SIZE / 2.0
    # distance from the tile's edge, along the nearer axis, capped at the platform
    edge = TILE_SIZE / 2.0 - np.maximum(np.abs(coords)[:, None], np.abs(coords)[None, :])
    rise = slope * np.minimum(edge, (TILE_SIZE - PLATFORM) / 2.0)
    return rise if kind == "pyramid_slope" else -rise

"""The policy artifact: a torch.export program that carries its own normalisation.

The training process exports it; the evaluation process loads only this file, so nothing
train.py does at run time can reach evaluation. An exported program is a graph of tensor
operations: loading it runs no code from train.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from harness import config
META_FILE = "harness_meta.json"   # the file name policies are saved under is harness.runs.ARTIFACT_NAME


class ArtifactError(RuntimeError):
    """The policy cannot be exported or loaded; the message says why."""


def export_policy(policy, path: str | Path, extra: dict | None = None) -> Path:
    """Export `policy` to `path`, after checking it maps (B, 48) -> (B, 12) for any batch size."""
    if not isinstance(policy, nn.Module):
        raise ArtifactError(
            f"train() must return a torch.nn.Module mapping (B, {config.OBS_DIM}) observations to "
            f"(B, {config.NUM_JOINTS}) actions; it returned {type(policy).__name__}"
        )
    policy = policy.cpu().eval()
    example = torch.zeros(8, config.OBS_DIM)
    with torch.no_grad():
        try:
            out = policy(example)
        except Exception as exc:  # the policy itself is broken
            raise ArtifactError(f"the returned policy failed on a (8, {config.OBS_DIM}) batch: {exc!r}") from exc
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (8, config.NUM_JOINTS):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ArtifactError(f"the policy must output (B, {config.NUM_JOINTS}) actions; got {shape}")
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    try:
        program = torch.export.export(policy, (example,), dynamic_shapes=({0: batch},))
    except Exception as exc:
        raise ArtifactError(
            "torch.export could not export the returned policy (keep its forward() free of Python "
            f"control flow on tensor values): {exc}"
        ) from exc
    with torch.no_grad():
        probe = torch.randn(32, config.OBS_DIM, generator=torch.Generator().manual_seed(0))
        if not torch.allclose(program.module()(probe), policy(probe), atol=1e-5, rtol=1e-5):
            raise ArtifactError("the exported policy does not reproduce the in-process policy's actions")
    meta = {"obs_dim": config.OBS_DIM, "action_dim": config.NUM_JOINTS, "joint_names": list(config.JOINT_NAMES)}
    meta.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path), extra_files={META_FILE: json.dumps(meta)})
    return path


def load_policy(path: str | Path) -> nn.Module:
    """Load a policy artifact (CPU) as a callable module: (B, 48) -> (B, 12)."""
    return _load(path, {})


def read_meta(path: str | Path) -> dict:
    files = {META_FILE: ""}
    _load(path, files)
    return json.loads(files[META_FILE] or "{}")


def _load(path: str | Path, extra_files: dict) -> nn.Module:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"no policy artifact at {path}")
    try:
        return torch.export.load(str(path), extra_files=extra_files).module()
    except Exception as exc:
        raise ArtifactError(f"{path} is not an exported policy (torch.export .pt2): {exc}") from exc


def fingerprint(policy: nn.Module) -> str | None:
    """sha256 of a loaded policy's parameters and buffers, or None for a trivial policy (each tensor
    constant, as a zero policy is), which any train.py reproduces without borrowing anything."""
    import hashlib

    tensors = sorted(list(policy.named_parameters()) + list(policy.named_buffers()), key=lambda kv: kv[0])
    if all(t.numel() == 0 or bool((t == t.flatten()[0]).all()) for _, t in tensors):
        return None
    h = hashlib.sha256()
    for name, t in tensors:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

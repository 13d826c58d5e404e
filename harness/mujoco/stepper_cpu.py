"""The CPU stepper: N copies of the model stepped by C MuJoCo's mujoco.batch on the usable CPU threads.

A stepper owns the physics and nothing else. It hands the env (harness.mujoco.env) torch tensors
that ARE the simulator's arrays (here zero-copy float64 views of the batch's bound numpy arrays),
so the env's logic, written once in torch, reads and writes the simulation directly. The other
stepper, stepper_warp, offers the same attributes and methods over MuJoCo Warp.

The batch keeps one MjData per thread, not per robot (1.3x faster), and computes no stage after a
step: the env derives what it reads (base and foot kinematics) from qpos/qvel itself, which is
cheaper than MuJoCo's post-step mjSTAGE_VEL (that would redo collision too). Contact forces,
joint torques and qacc are therefore those of the last substep.
"""

from __future__ import annotations

import warnings

import mujoco
import mujoco.batch
import numpy as np
import torch

_STAGE_VEL = mujoco.mjtStage.mjSTAGE_VEL.value
_STAGE_NONE = mujoco.mjtStage.mjSTAGE_NONE.value
# MuJoCo's warnings that mean a blown-up simulation (mj_step then resets that data itself)
_BAD_WARNINGS = [
    mujoco.mjtWarning.mjWARN_BADQPOS.value,
    mujoco.mjtWarning.mjWARN_BADQVEL.value,
    mujoco.mjtWarning.mjWARN_BADQACC.value,
]
_WARN_NUMBER = 1  # mjWarningStat is (lastinfo, number)
PERSISTENT = False         # per-thread MjData: faster than one per sim
STEP_STAGE = _STAGE_NONE   # nothing derived after a step: the env computes what it reads


class CpuStepper:
    """mujoco.batch behind the stepper interface. Arrays are float64 torch views on the CPU:
    qpos, qvel (N, nq/nv); ctrl (N, 12), the PD targets; sensordata; joint_torque, joint_acc
    (N, 12), the motors' applied torque and qacc of the joints; friction (N, npair, 5) and
    body_mass (N, nbody), per simulation when asked for, else None."""

    name = "mujoco"
    device = torch.device("cpu")
    dtype = torch.float64

    def __init__(self, model: mujoco.MjModel, num_envs: int, nthread: int = 0,
                 per_world_friction: bool = False, per_world_mass: bool = False):
        self.model = model
        self.num_envs = num_envs
        self._batch = b = mujoco.batch.Batch(model, num_envs, nthread, persistent=PERSISTENT)
        t = torch.from_numpy  # shares memory: writes go straight into the batch
        self.qpos, self.qvel = t(b.bind("qpos")), t(b.bind("qvel"))
        self.ctrl = t(b.bind("ctrl"))[:, :12]  # the PD targets (the columns after are back-EMF terms)
        with warnings.catch_warnings():  # the batch binds sensordata read-only; the env only reads it
            warnings.simplefilter("ignore", UserWarning)
            self.sensordata = t(b.bind("sensordata"))
        self.joint_torque = t(b.bind("qfrc_actuator"))[:, 6:]
        self.joint_acc = t(b.bind("qacc"))[:, 6:]
        # per-simulation model fields for domain randomisation (expanded only when used)
        self.friction = t(b.expand("pair_friction")) if per_world_friction else None
        self.body_mass = t(b.expand("body_mass")) if per_world_mass else None
        self._warn_seen = np.zeros((num_envs, len(_BAD_WARNINGS)), np.int64)

    def step(self, nstep: int) -> torch.Tensor:
        """nstep physics steps of every simulation; returns (N,) bool of those MuJoCo itself gave
        up on (raised, or warned of a bad qpos/qvel/qacc and reset that data)."""
        bad = np.zeros(self.num_envs, dtype=bool)
        try:
            self._batch.step(nstep=nstep, stage=STEP_STAGE)
        except mujoco.batch.SimulationError as e:
            bad[np.asarray(e.ids, dtype=np.int64)] = True
        warn = self._batch.warning[:, _BAD_WARNINGS, _WARN_NUMBER]
        bad |= (warn > self._warn_seen).any(axis=1)
        self._warn_seen[:] = warn
        return torch.from_numpy(bad)

    def clear(self, ids: torch.Tensor) -> None:
        """Reset these simulations' data to the model's defaults (the env then writes their state)."""
        self._batch.reset(ids.numpy(), stage=_STAGE_NONE)

    def restarted(self, ids: torch.Tensor) -> None:
        """The env wrote fresh states into these rows: compute their derived quantities, and take
        their warning counts as the new baseline."""
        ids = ids.numpy()
        try:
            self._batch.forward(ids, stage=_STAGE_VEL)
        except mujoco.batch.SimulationError as e:  # a fresh default pose never fails; say so loudly if it does
            raise RuntimeError(f"MuJoCo failed on a fresh reset: {e}") from e
        self._warn_seen[ids] = self._batch.warning[ids][:, _BAD_WARNINGS, _WARN_NUMBER]

    def forward(self, ids: torch.Tensor) -> None:
        """Recompute the derived quantities (contacts, sensors, qacc) of these rows from their state."""
        self._batch.forward(ids.numpy(), stage=_STAGE_VEL)

    def close(self) -> None:
        self._batch = None

"""The Warp stepper: the same MJCF stepped by MuJoCo Warp, on an NVIDIA GPU or on Warp's CPU device.

It offers what stepper_cpu.CpuStepper offers (see there), so the env's logic is the same code on
both. The differences, and why:
  - Arrays are float32 (MuJoCo Warp's), handed out with wp.to_torch: torch tensors that share
    the device memory, so the env reads and writes the simulation with no copy and, on a GPU,
    no trip to the host.
  - The solver is Newton: MuJoCo Warp has no PGS (the CPU model's). Same cone, impratio,
    iterations and timestep; benchmarks/stability.py and tests/test_warp.py measure the change.
  - The `nstep` substeps of a policy step are one captured graph (a CUDA graph on a GPU, a recorded
    replay on Warp's CPU device: one code path, so CI runs it), launched once per step; likewise a
    reset and a forward pass. A graph keeps the arrays it was captured with, so nothing here ever
    reassigns an array: the env writes rows in place, through the tensors (and the reset mask).
  - MuJoCo Warp raises no bad-qpos/qacc warnings and resets nothing itself: a blown-up world just
    holds NaN or huge values, which the env's own check catches (step() reports none here).
  - Per-world friction and trunk mass are put_model's batched fields (batch_sizes), written in
    place like the state. As on the CPU (mujoco.batch's expand), only body_mass changes: inertia
    and derived constants stay those of the nominal model.
The first use of a model compiles Warp kernels (about 40 s on 2 CPU cores, cached in ~/.cache/warp);
`warm()` does it before the training clock starts.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import mujoco
import torch


def load_warp():
    """Import warp and mujoco_warp quietly (their import is slow and chatty), with a kernel cache
    this process can write."""
    import warp as wp

    if not _cache_writable(wp.config.version):
        _use_private_cache(wp.config.version)
    wp.config.quiet = True
    wp.config.log_level = wp.LOG_WARNING  # no line per kernel module loaded
    import mujoco_warp as mjw

    return wp, mjw


def _cache_root() -> Path:
    """Warp's kernel cache root (WARP_CACHE_PATH, else the user cache folder, as Warp picks it)."""
    if os.environ.get("WARP_CACHE_PATH"):
        return Path(os.environ["WARP_CACHE_PATH"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "warp"


def _cache_writable(version: str) -> bool:
    folder = _cache_root() / version
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _use_private_cache(version: str) -> None:
    """Inside the training sandbox the home folder is read-only, and Warp writes each compiled kernel
    to its cache. Copy the machine's cache (the orchestrator's preflight filled it) into a private
    temporary folder and compile into that: nothing one run compiles reaches another run."""
    source = _cache_root() / version
    private = Path(tempfile.mkdtemp(prefix="warp-cache-"))
    if source.is_dir():
        shutil.copytree(source, private / version, dirs_exist_ok=True)
    os.environ["WARP_CACHE_PATH"] = str(private)


def gpu_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """A copy of the CPU model with the solver MuJoCo Warp supports (Newton for PGS)."""
    m = copy.copy(model)
    if m.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
        m.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    return m


def warp_device_name(device: torch.device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
    return "cpu"


class WarpStepper:
    """MuJoCo Warp behind the stepper interface (attributes as CpuStepper's, float32, on `device`)."""

    name = "warp"
    dtype = torch.float32

    def __init__(self, model: mujoco.MjModel, num_envs: int, device: torch.device | str = "cpu",
                 per_world_friction: bool = False, per_world_mass: bool = False):
        wp, mjw = self._wp, self._mjw = load_warp()
        self.device = torch.device(device)
        self.model = gpu_model(model)
        self.num_envs = n = num_envs
        self._wdev = wp.get_device(warp_device_name(self.device))
        batch = {}
        if per_world_friction:
            batch["pair_friction"] = n
        if per_world_mass:
            batch["body_mass"] = n
        with wp.ScopedDevice(self._wdev):
            data = mujoco.MjData(self.model)
            mujoco.mj_forward(self.model, data)
            self._m = mjw.put_model(self.model, batch_sizes=batch)
            # a world that ends its solve at the iteration cap is normal (C MuJoCo's PGS does the same,
            # silently); the kernels' printf per world would flood the training log. Contact and
            # constraint overflows, which drop contacts, still print.
            self._m.opt.warn_overflow = int(mjw.OverflowType.ALL & ~mjw.OverflowType.ITERATIONS
                                            & ~mjw.OverflowType.LS_ITERATIONS)
            self._d = mjw.put_data(self.model, data, nworld=n)
        self._stream = None
        if self._wdev.is_cuda:
            # one stream for warp and torch: the graphs and the env's torch ops run in order, with
            # no host synchronisation between them (torch's legacy default stream cannot capture)
            self._stream = wp.get_stream(self._wdev)
            torch.cuda.set_stream(wp.stream_to_torch(self._stream))
        t = wp.to_torch  # zero-copy views; in-place writes reach the simulation
        d, m = self._d, self._m
        self.qpos, self.qvel = t(d.qpos), t(d.qvel)
        self.ctrl = t(d.ctrl)[:, :12]
        self.sensordata = t(d.sensordata)
        self.joint_torque = t(d.qfrc_actuator)[:, 6:]
        self.joint_acc = t(d.qacc)[:, 6:]
        self.friction = t(m.pair_friction) if per_world_friction else None  # (N, npair, 5)
        self.body_mass = t(m.body_mass) if per_world_mass else None          # (N, nbody)
        self._mask_t = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._mask = wp.from_torch(self._mask_t, dtype=wp.bool)
        self._graphs: dict = {}  # captured graphs by what they run
        self._none = torch.zeros(n, dtype=torch.bool, device=self.device)

    # --- the interface ----------------------------------------------------------------------

    def step(self, nstep: int) -> torch.Tensor:
        """nstep physics steps of every world; MuJoCo Warp flags nothing itself (see the module)."""
        self._replay(("step", nstep), lambda: [self._mjw.step(self._m, self._d) for _ in range(nstep)])
        return self._none

    def clear(self, ids: torch.Tensor) -> None:
        """Reset these worlds' data to the model's defaults (the env then writes their state)."""
        self._mask_t.zero_()
        self._mask_t[ids.to(self.device)] = True
        self._replay("clear", lambda: self._mjw.reset_data(self._m, self._d, reset=self._mask))

    def restarted(self, ids: torch.Tensor) -> None:
        """Nothing to do: the next step's forward pass starts from the written state, and the env
        reads nothing derived until then (reset() calls forward() for the state it returns)."""

    def forward(self, ids: torch.Tensor) -> None:
        """Recompute derived quantities (contacts, sensors, qacc). MuJoCo Warp's forward runs on every
        world; it is idempotent for the others (it neither integrates nor moves the warmstart)."""
        self._replay("forward", lambda: self._mjw.forward(self._m, self._d))

    def warm(self) -> float:
        """Compile (or load from Warp's cache) every kernel a step, a reset and a forward use, and
        capture their graphs, so that none of it lands on the training clock. Seconds taken.
        Leaves the worlds in a state the env's reset() overwrites."""
        import time

        start = time.perf_counter()
        every = torch.arange(self.num_envs, device=self.device)
        self.clear(every)
        self.forward(every)
        self.step(4)
        self.clear(every)
        self._wp.synchronize_device(self._wdev)
        return time.perf_counter() - start

    def close(self) -> None:
        self._graphs.clear()

    def _replay(self, key, work) -> None:
        """Run `work` (warp launches) as a graph captured on its first call: on a GPU one CUDA graph
        launch instead of hundreds of kernel launches; on Warp's CPU device a recorded replay (20x
        faster than launching from Python, and the same code path the GPU takes, bit for bit)."""
        wp = self._wp
        graph = self._graphs.get(key)
        if graph is None:
            with wp.ScopedDevice(self._wdev):
                with wp.ScopedCapture(device=self._wdev, stream=self._stream) as capture:
                    work()  # recorded, not run
            graph = self._graphs[key] = capture.graph
        wp.capture_launch(graph, stream=self._stream)


def warm_cache(device: torch.device | str) -> float:
    """Compile (or load) the kernels of every model the env can build on `device`: flat and rough
    ground, with per-world friction and mass. Seconds taken. Before the training clock starts
    (harness.backends.start_backend), and in the orchestrator's preflight, so a run's own start
    mostly loads what is cached."""
    import time

    from harness.mujoco import robot, terrain

    start = time.perf_counter()
    for ground in (terrain.flat(), terrain.rough()):
        model = robot.build_model(ground, visual=False)
        WarpStepper(model, 2, device, per_world_friction=True, per_world_mass=True).warm()
    return time.perf_counter() - start


def preflight_import() -> None:
    """Raise BackendError with the fix if MuJoCo Warp is not installed."""
    from harness.env_api import BackendError

    try:
        load_warp()
    except ImportError as e:
        raise BackendError(
            f"the MuJoCo backend trains on this device with MuJoCo Warp, which is not installed ({e}). It is a "
            "default dependency on Python >= 3.11: there, run `uv sync`; or use --device cpu."
        ) from e


def preflight_cuda(device: str) -> None:
    """Raise BackendError with the fix if MuJoCo Warp cannot run on this CUDA device: the package is
    missing, or the GPU or driver is too old. Imports warp (about a second); compiles nothing."""
    from harness.env_api import BackendError

    preflight_import()
    wp, _ = load_warp()
    wp.init()
    name = warp_device_name(torch.device(device))
    if not wp.is_cuda_available() or name not in [d.alias for d in wp.get_cuda_devices()]:
        driver = wp.get_cuda_driver_version() if hasattr(wp, "get_cuda_driver_version") else None
        raise BackendError(
            f"--device {device}: Warp {wp.__version__} sees no usable CUDA device {name} (driver {driver}). "
            "MuJoCo Warp needs an NVIDIA driver that supports the CUDA version Warp was built for "
            "(R580 or newer for warp-lang 1.19). Update the driver, or run with --device cpu."
        )
    arch = wp.get_device(name).arch
    if arch < 75:
        raise BackendError(
            f"--device {device}: this GPU has compute capability {arch // 10}.{arch % 10}; MuJoCo Warp needs "
            "7.5 (Turing) or newer. Run with --device cpu."
        )


def main(argv=None) -> int:
    """`python -m harness.mujoco.stepper_warp --warm DEVICE`: check that MuJoCo Warp can run on DEVICE
    and fill Warp's kernel cache. harness.backends.preflight runs it in a child process, so the
    orchestrator holds no CUDA context for the rest of the experiment. Exit 3 with the fix on stderr."""
    import argparse
    import sys

    from harness.env_api import BackendError

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--warm", metavar="DEVICE", required=True)
    args = p.parse_args(argv)
    try:
        if args.warm.startswith("cuda"):
            preflight_cuda(args.warm)
        else:
            preflight_import()
        seconds = warm_cache(torch.device(args.warm))
    except BackendError as e:
        print(str(e), file=sys.stderr)
        return 3
    print(f"MuJoCo Warp kernels ready on {args.warm} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

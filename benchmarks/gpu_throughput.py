"""MuJoCo Warp throughput on a GPU: env steps/s at several world counts, physics only, the env, and
train.py's whole training loop, beside the C MuJoCo loop on this machine's CPUs.

    uv run python benchmarks/gpu_throughput.py                                   # 1024 4096 8192 16384 on cuda
    uv run python benchmarks/gpu_throughput.py --num-envs 4096 --seconds 20
    uv run python benchmarks/gpu_throughput.py --device cpu --num-envs 16 --seconds 2   # Warp's CPU device: a check

For each num_envs it times, one after another, in the same process:
  physics  WarpStepper.step(4): the captured graph of one policy step's substeps, random PD targets;
  env      MujocoQuadrupedEnv.step(actions) on MuJoCo Warp: physics plus observation, RobotState,
           terminations, resets, commands (the whole env on the device);
  loop     train.py's own train(ctx) (its GPU_NUM_ENVS set to num_envs) for --seconds of budget:
           rollout, rewards, PPO updates, all of it;
then the same `loop` on C MuJoCo at train.py's CPU size (ENV_OPTIONS, 512 envs) on this machine's
CPUs, and prints every figure as env steps/s and as a ratio to that CPU loop. Kernel compile and
graph capture happen before the timed windows (as the harness does before the clock). Take it on
an otherwise idle GPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the harness runs its trainer
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import train  # noqa: E402
from harness import backends, config, threads  # noqa: E402
from harness.context import TrainContext  # noqa: E402
from harness.mujoco import robot, stepper_warp, terrain  # noqa: E402
from harness.mujoco.env import MujocoQuadrupedEnv  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, seconds: float, device: torch.device) -> tuple[int, float]:
    fn()  # graphs captured, caches warm
    sync(device)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
        if calls % 16 == 0:
            sync(device)
    sync(device)
    return calls, time.perf_counter() - start


def physics(n: int, device: torch.device, seconds: float) -> float:
    sim = stepper_warp.WarpStepper(robot.build_model(terrain.flat(), visual=False), n, device)
    sim.warm()
    every = torch.arange(n, device=sim.device)
    sim.clear(every)
    sim.qpos[:, 2] = config.BASE_INIT_HEIGHT
    sim.qpos[:, 3] = 1.0
    sim.qpos[:, 7:] = torch.tensor(config.DEFAULT_JOINT_POS, device=sim.device)
    default = torch.tensor(config.DEFAULT_JOINT_POS, device=sim.device)

    def step():
        sim.ctrl[:] = default + config.ACTION_SCALE * 0.5 * torch.randn(n, 12, device=sim.device)
        sim.step(config.DECIMATION)

    calls, secs = timed(step, seconds, device)
    return calls * n / secs


def env_only(n: int, device: torch.device, seconds: float) -> float:
    env = MujocoQuadrupedEnv(config.make_options(num_envs=n), seed=0, device=device, stepper="warp")
    env.warm()
    env.reset()
    calls, secs = timed(lambda: env.step(0.5 * torch.randn(n, 12, device=device)), seconds, device)
    env.close()
    return calls * n / secs


def loop(n: int | None, device: torch.device, seconds: float) -> float:
    """train.py's train(ctx) for `seconds` of budget: env steps/s as the harness counts them."""
    saved = train.GPU_NUM_ENVS, train.ENV_OPTIONS
    if n is not None:
        train.GPU_NUM_ENVS, train.ENV_OPTIONS = n, dict(train.ENV_OPTIONS, num_envs=n)
    try:
        ctx = TrainContext(seed=1, device=device, backend="mujoco", budget_s=seconds, smoke=True)
        ctx.start_clock()
        train.train(ctx)
        sync(device)
    finally:
        train.GPU_NUM_ENVS, train.ENV_OPTIONS = saved
    return ctx.env_steps() / ctx.elapsed()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, nargs="+", default=[1024, 4096, 8192, 16384])
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per figure (loop: its budget)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--skip-cpu", action="store_true", help="leave out the C MuJoCo loop on the CPUs")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    threads.configure(args.device)
    os.environ.pop(backends.STEPPER_KNOB, None)
    if device.type == "cpu":
        os.environ[backends.STEPPER_KNOB] = "warp"  # the loop on Warp's CPU device (a check, not a figure)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "Warp CPU device"
    print(f"device={args.device} ({name}) cpus={threads.usable_cpus()} torch={torch.__version__} "
          f"mujoco_warp={stepper_warp.load_warp()[1].__version__} seconds/figure={args.seconds}", flush=True)
    t0 = time.perf_counter()
    compile_s = stepper_warp.warm_cache(device)
    print(f"kernels ready in {compile_s:.1f} s (start-up; {time.perf_counter() - t0:.1f} s with imports)", flush=True)
    cpu_loop = None
    if not args.skip_cpu:
        saved = os.environ.pop(backends.STEPPER_KNOB, None)
        cpu_loop = loop(None, torch.device("cpu"), args.seconds)
        if saved:
            os.environ[backends.STEPPER_KNOB] = saved
        print(f"C MuJoCo loop on the CPUs, {train.ENV_OPTIONS['num_envs']} envs: {cpu_loop:,.0f} env steps/s", flush=True)
    ratio = (lambda v: f"{v / cpu_loop:7.1f}x") if cpu_loop else (lambda v: "")
    print(f"{'num_envs':>8} {'physics':>12} {'':>8} {'env':>12} {'':>8} {'loop':>12} {'':>8}   (env steps/s; x the CPU loop)")
    for n in args.num_envs:
        ph, en, lo = physics(n, device, args.seconds), env_only(n, device, args.seconds), loop(n, device, args.seconds)
        print(f"{n:>8} {ph:>12,.0f} {ratio(ph):>8} {en:>12,.0f} {ratio(en):>8} {lo:>12,.0f} {ratio(lo):>8}", flush=True)
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB (torch's share)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

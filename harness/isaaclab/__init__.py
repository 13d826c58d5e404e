"""The Isaac Lab backend: the Unitree Go2 velocity task of Isaac Lab 3.0 (kit-less, Newton physics)
behind harness.env_api.

It runs in its own environment (Python 3.12, harness/isaaclab/pyproject.toml, at .venv-isaaclab/),
on cuda or on Warp's CPU device. Layers, so that everything but the simulator itself is testable in
the default environment (tests/isaaclab_fakes.py mirrors the Isaac Lab 3.0 attributes these modules
touch):

  boot         installation and device pre-flight (Python 3.12, Isaac Lab 3.x, on cuda the driver and
               GPU), `start(device)` (the imports, before the clock), `launch(cfg)` (launch_simulation,
               refused if the cfg needs Kit). Torch-free at import: the pre-flight uses it.
  asset        our quadruped (the embedded MJCF) written as go2.usd plus a ground plane under an
               ISAACSIM_ASSET_ROOT, for machines that cannot reach NVIDIA's asset host.
  read_state   pure-torch adapters that read Isaac-shaped objects (an Articulation-like `robot`,
               a ContactSensor-like `contact`, a RayCaster-like height scan; 3.0's ProxyArray data,
               `.torch`) into our RobotState.
  task_config  parse_env_cfg of the registry's Go2 velocity task and our edit of it: rewards removed,
               our terrain mixture, resets, DR, commands, noise off, our termination set, one hook term.
  env          the driver `IsaacLabQuadrupedEnv`, which owns one ManagerBasedRLEnv.
  self_check   `python -m harness.isaaclab.self_check`: build, stand, steps/s.

How a step works: Isaac Lab's ManagerBasedRLEnv.step() steps physics, computes terminations,
then rewards, then resets finished envs, then resamples commands. Our only reward term is a
hook that runs between terminations and resets; it snapshots the transition into a RobotState
(pre-reset, with the command the policy acted on). After step() returns we read the post-reset
state once more for the observation, so obs is already the first observation of a new episode
where an env finished, exactly as on the MuJoCo backend.
"""

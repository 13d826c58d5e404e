"""The Isaac Lab backend: the Unitree Go2 velocity task of Isaac Lab 2.3.x behind harness.env_api.

Layers, so that everything but the simulator itself is testable without Isaac Sim
(tests/isaaclab_fakes.py mirrors the Isaac Lab attributes these modules touch):

  boot         installation check, EULA, `start_app(device)`. Isaac Sim must be booted through
               AppLauncher before anything imports `isaaclab.*` (harness.backends.start_backend()
               does it before the training clock starts). Torch-free: the pre-flight uses it.
  read_state   pure-torch adapters that read Isaac-shaped objects (an Articulation-like `robot`,
               a ContactSensor-like `contact`, a RayCaster-like height scan) into our RobotState.
  task_config  the edit of the registry's Go2 velocity cfg: rewards removed, our terrain
               mixture, DR, commands, noise off, our termination set, one hook term.
  env          the driver `IsaacLabQuadrupedEnv`, which owns one ManagerBasedRLEnv.
  self_check   `python -m harness.isaaclab.self_check`: boot, build, stand, steps/s on a GPU machine.

How a step works: Isaac Lab's ManagerBasedRLEnv.step() steps physics, computes terminations,
then rewards, then resets finished envs, then resamples commands. Our only reward term is a
hook that runs between terminations and resets; it snapshots the transition into a RobotState
(pre-reset, with the command the policy acted on). After step() returns we read the post-reset
state once more for the observation, so obs is already the first observation of a new episode
where an env finished, exactly as on the MuJoCo backend.
"""

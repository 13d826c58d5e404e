"""The embedded MuJoCo backend: our Go2-class quadruped on flat or rough ground.

  robot         load assets/quadruped.xml, put it on a terrain, compile, look up ids; foot kinematics
  terrain       flat ground, or the rough heightfield (difficulty rows x terrain types)
  env           MujocoQuadrupedEnv, the harness.env_api contract: the env logic, written once in torch
  stepper_cpu   the physics on the CPU: C MuJoCo's mujoco.batch (the default)
  stepper_warp  the physics on a GPU (or Warp's CPU device, for tests): MuJoCo Warp
  read_state    frame rotations, and the simulation's arrays packed into a RobotState
  draws         the env's random draws: numpy's streams on the CPU, a torch Generator on a GPU
"""

"""The embedded MuJoCo backend: our Go2-class quadruped on flat or rough ground, stepped with mujoco.batch.

  robot       load assets/quadruped.xml, put it on a terrain, compile, look up ids
  terrain     flat ground, or the rough heightfield (difficulty rows x terrain types)
  env         MujocoQuadrupedEnv, the harness.env_api contract on the CPU
  read_state  frame rotations, and the batch arrays packed into a RobotState
"""

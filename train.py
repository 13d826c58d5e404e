"""The baseline: PPO that teaches a quadruped to track velocity commands.

This is the one file the research agent edits. It reads top to bottom:
hyperparameters, reward terms, networks, PPO, and `train(ctx)`. The harness
(evaluate.py) owns the clock, the seed, the robot, the observation, evaluation
and logging; this file owns everything that decides the policy.

Run it with `uv run train.py`. The harness trains `train` in a supervised
process for a fixed wall-clock budget, scores the returned policy on a fixed
command panel, and prints a summary block.
"""

import torch
from torch import nn

import evaluate
from harness.config import TERRAIN_LEVELS

# ---------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------

# Training environment (harness/config.py EnvOptions lists every option and its bounds).
# The terrain is the branch's task (ctx.task: "flat" or "rough"), the ground the policy is scored on.
ENV_OPTIONS = dict(num_envs=512)
GPU_NUM_ENVS = 4096       # on cuda (MuJoCo Warp, or Isaac Lab): the GPU wants thousands of robots
PROMOTE_DISTANCE = 4.0    # m walked in an episode to move up a terrain level (half a tile, Isaac Lab's rule)

# PPO, with rsl_rl's semantics and Isaac Lab's Go2 settings unless noted.
STEPS_PER_ENV = 24        # rollout length per iteration
EPOCHS = 2                # rsl_rl uses 5; at 2 the loop runs 1.3x more env steps per second (benchmarks/train_throughput.py)
MINIBATCHES = 4
GAMMA = 0.99
GAE_LAMBDA = 0.95
CLIP = 0.2                # surrogate and value clipping
VALUE_COEF = 1.0
ENTROPY_COEF = 0.01
LEARNING_RATE = 1e-3      # initial; adapted to hit DESIRED_KL
DESIRED_KL = 0.02         # rsl_rl uses 0.01; measured once per epoch, 0.01 pinned the lr at 2-4e-4
LR_BOUNDS = (1e-5, 1e-2)
MAX_GRAD_NORM = 1.0
HIDDEN = (128, 128, 128)
INIT_NOISE_STD = 1.0

# ---------------------------------------------------------------------------
# Reward terms: small functions of the harness's batched RobotState -> (N,)
# ---------------------------------------------------------------------------


def track_lin_vel_xy_exp(s, std=0.5):
    err = (s.commands[:, :2] - s.base_lin_vel[:, :2]).square().sum(-1)
    return torch.exp(-err / std**2)


def track_ang_vel_z_exp(s, std=0.5):
    err = (s.commands[:, 2] - s.base_ang_vel[:, 2]).square()
    return torch.exp(-err / std**2)


def lin_vel_z_l2(s):
    return s.base_lin_vel[:, 2].square()


def ang_vel_xy_l2(s):
    return s.base_ang_vel[:, :2].square().sum(-1)


def joint_torques_l2(s):
    return s.torques.square().sum(-1)


def joint_acc_l2(s):
    return s.joint_acc.square().sum(-1)


def action_rate_l2(s):
    return (s.actions - s.last_actions).square().sum(-1)


def feet_air_time(s, threshold=0.5):
    # Reward long steps at touchdown, only while asked to move (Isaac Lab's feet_air_time).
    steps = ((s.foot_last_air_time - threshold) * s.foot_first_contact).sum(-1)
    return steps * (s.commands[:, :2].norm(dim=-1) > 0.1)


def flat_orientation_l2(s):
    return s.projected_gravity[:, :2].square().sum(-1)


def undesired_contacts(s):
    return s.undesired_contact.float().sum(-1)


# Weights of Isaac Lab 2.3's Go2 flat velocity task (3.0 changed a few: README, "Where the two
# backends agree"). Like Isaac Lab, rewards are scaled by dt.
REWARDS = {
    track_lin_vel_xy_exp: 1.5,
    track_ang_vel_z_exp: 0.75,
    lin_vel_z_l2: -2.0,
    ang_vel_xy_l2: -0.05,
    joint_torques_l2: -2e-4,
    joint_acc_l2: -2.5e-7,
    action_rate_l2: -0.01,
    feet_air_time: 0.25,
    flat_orientation_l2: -2.5,
    undesired_contacts: -1.0,
}


def compute_reward(state):
    """Total reward (N,) and each term's weighted contribution (N,) by name."""
    terms = {fn.__name__: weight * fn(state) * state.dt for fn, weight in REWARDS.items()}
    return sum(terms.values()), terms


# ---------------------------------------------------------------------------
# Terrain curriculum (rough task only)
# ---------------------------------------------------------------------------


def next_terrain_levels(levels, walked, asked, done):
    """Isaac Lab's terrain curriculum, with the path walked in place of the distance from the spawn:
    an episode that walked over PROMOTE_DISTANCE moves up a level, one that walked under half what its
    commands asked moves down, and one that passed the top level starts again on a random level."""
    up = walked > PROMOTE_DISTANCE
    down = (walked < 0.5 * asked) & ~up
    new = levels + up.long() - down.long()
    new = torch.where(new >= TERRAIN_LEVELS, torch.randint_like(new, TERRAIN_LEVELS), new.clamp(min=0))
    return torch.where(done, new, levels)


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------


def mlp(sizes, out_gain=1.0):
    layers = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else 2**0.5)
        nn.init.zeros_(linear.bias)
        layers += [linear] if last else [linear, nn.ELU()]
    return nn.Sequential(*layers)


class Normalizer(nn.Module):
    """Running mean and variance of observations (empirical normalisation)."""

    def __init__(self, dim, eps=1e-2):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(0.0))
        self.eps = eps

    @torch.no_grad()
    def update(self, x):
        n = x.shape[0]
        total = self.count + n
        delta = x.mean(0) - self.mean
        self.mean += delta * n / total
        self.var = (self.var * self.count + x.var(0, unbiased=False) * n + delta.square() * self.count * n / total) / total
        self.count = total

    def forward(self, x):
        return (x - self.mean) / torch.sqrt(self.var + self.eps)


class ActorCritic(nn.Module):
    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.normalizer = Normalizer(obs_dim)
        self.actor = mlp((obs_dim, *HIDDEN, act_dim), out_gain=0.01)
        self.critic = mlp((obs_dim, *HIDDEN, 1))
        self.log_std = nn.Parameter(torch.full((act_dim,), float(INIT_NOISE_STD)).log())

    def forward(self, obs):
        x = self.normalizer(obs)
        dist = torch.distributions.Normal(self.actor(x), self.log_std.exp())
        return dist, self.critic(x).squeeze(-1)


class Policy(nn.Module):
    """What leaves training: normalisation plus the actor's mean action."""

    def __init__(self, model):
        super().__init__()
        self.normalizer = model.normalizer
        self.actor = model.actor

    def forward(self, obs):
        return self.actor(self.normalizer(obs))


# ---------------------------------------------------------------------------
# PPO
# ---------------------------------------------------------------------------


def gae(rewards, values, dones, last_values, gamma=GAMMA, lam=GAE_LAMBDA):
    """Advantages and returns (T, N). dones[t] ends the episode after step t."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_values)
    for t in reversed(range(rewards.shape[0])):
        next_values = last_values if t == rewards.shape[0] - 1 else values[t + 1]
        not_done = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * next_values * not_done - values[t]
        running = delta + gamma * lam * not_done * running
        advantages[t] = running
    return advantages, advantages + values


def bootstrap_timeouts(rewards, values, truncated, gamma=GAMMA):
    """A time-out is not a failure: credit the value the episode would have gone on to earn."""
    return rewards + gamma * values * truncated.float()


def ppo_loss(model, batch, clip=CLIP):
    """The clipped surrogate, clipped value loss and entropy on one mini-batch."""
    dist, values = model(batch["obs"])
    log_prob = dist.log_prob(batch["actions"]).sum(-1)
    ratio = torch.exp(log_prob - batch["log_prob"])
    adv = batch["advantages"]
    surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(1.0 - clip, 1.0 + clip)).mean()
    values_clipped = batch["values"] + (values - batch["values"]).clamp(-clip, clip)
    value_loss = torch.max((values - batch["returns"]).square(), (values_clipped - batch["returns"]).square()).mean()
    entropy = dist.entropy().sum(-1).mean()
    loss = surrogate + VALUE_COEF * value_loss - ENTROPY_COEF * entropy
    return loss, dict(surrogate=surrogate.item(), value_loss=value_loss.item(), entropy=entropy.item()), dist


def gaussian_kl(old_mu, old_std, dist):
    """KL(old || new) per sample, summed over action dimensions."""
    new_mu, new_std = dist.mean, dist.stddev
    kl = torch.log(new_std / old_std) + (old_std.square() + (old_mu - new_mu).square()) / (2.0 * new_std.square()) - 0.5
    return kl.sum(-1)


def update(model, optimizer, data, lr):
    """EPOCHS x MINIBATCHES of PPO; the learning rate adapts once per epoch from its mean KL."""
    n = data["obs"].shape[0]
    stats = {}
    for _ in range(EPOCHS):
        kls = []
        for idx in torch.randperm(n).chunk(MINIBATCHES):
            batch = {k: v[idx] for k, v in data.items()}
            loss, stats, dist = ppo_loss(model, batch)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            with torch.no_grad():
                kls.append(gaussian_kl(batch["mu"], batch["std"], dist).mean().item())
        kl = sum(kls) / len(kls)
        if kl > 2.0 * DESIRED_KL:
            lr = max(LR_BOUNDS[0], lr / 1.5)
        elif 0.0 < kl < 0.5 * DESIRED_KL:
            lr = min(LR_BOUNDS[1], lr * 1.5)
        for group in optimizer.param_groups:
            group["lr"] = lr
    return lr, dict(stats, kl=kl)


def train(ctx):
    options = dict(ENV_OPTIONS, num_envs=GPU_NUM_ENVS) if ctx.device.type == "cuda" else ENV_OPTIONS
    env = ctx.make_env(terrain=ctx.task, **options)
    model = ActorCritic(env.obs_dim, env.action_dim).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    lr, env_steps = LEARNING_RATE, 0
    obs = env.reset()
    curriculum = ctx.task == "rough"
    levels = env.terrain_levels
    walked, asked = torch.zeros(env.num_envs, device=ctx.device), torch.zeros(env.num_envs, device=ctx.device)

    while not ctx.time_up():
        # -- rollout
        rollout = {k: [] for k in ("obs", "actions", "log_prob", "values", "mu", "std", "rewards", "dones")}
        term_sums, track_err = {}, 0.0  # running sums, read once per iteration
        with torch.no_grad():
            for _ in range(STEPS_PER_ENV):
                model.normalizer.update(obs)
                dist, values = model(obs)
                actions = dist.sample()
                next_obs, state, terminated, truncated, _ = env.step(actions)
                reward, terms = compute_reward(state)
                reward = bootstrap_timeouts(reward, values, truncated)
                for k, v in (("obs", obs), ("actions", actions), ("log_prob", dist.log_prob(actions).sum(-1)),
                             ("values", values), ("mu", dist.mean), ("std", dist.stddev.expand_as(actions)),
                             ("rewards", reward), ("dones", terminated | truncated)):
                    rollout[k].append(v)
                for name, v in terms.items():
                    term_sums[name] = term_sums.get(name, 0.0) + v.mean()
                track_err += (state.commands[:, :2] - state.base_lin_vel[:, :2]).norm(dim=-1).mean()
                if curriculum:  # a new level applies from the env's next reset
                    done = terminated | truncated
                    walked += state.base_lin_vel[:, :2].norm(dim=-1) * state.dt
                    asked += state.commands[:, :2].norm(dim=-1) * state.dt
                    levels = next_terrain_levels(levels, walked, asked, done)
                    env.set_terrain_levels(levels)
                    walked[done], asked[done] = 0.0, 0.0
                obs = next_obs
            _, last_values = model(obs)
        data = {k: torch.stack(v) for k, v in rollout.items()}
        advantages, returns = gae(data.pop("rewards"), data["values"], data.pop("dones"), last_values)
        data["advantages"] = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        data["returns"] = returns
        data = {k: v.flatten(0, 1) for k, v in data.items()}
        env_steps += STEPS_PER_ENV * env.num_envs

        # -- learn
        lr, stats = update(model, optimizer, data, lr)

        ctx.log(
            env_steps,
            reward=sum(term_sums.values()).item() / STEPS_PER_ENV,
            vel_err=track_err.item() / STEPS_PER_ENV,
            lr=lr,
            noise_std=model.log_std.exp().mean().item(),
            terrain_level=levels.float().mean().item(),
            **stats,
            **{f"rew/{k}": v.item() / STEPS_PER_ENV for k, v in term_sums.items()},
        )

    return Policy(model).cpu().eval()


if __name__ == "__main__":
    evaluate.run(train)

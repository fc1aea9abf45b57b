"""Sample-episode generator on pybullet: a Panda doing scripted tasks, seen by a ring of RGB-D cameras."""

from geo4d_studio.sim.episode import EpisodeData, generate_episode, simulate_episode
from geo4d_studio.sim.tasks import TASKS

__all__ = ["TASKS", "EpisodeData", "generate_episode", "simulate_episode"]

"""The WebShop text environment: catalog, search, pages, reward, goals, baselines."""

import gymnasium as gym

from envs.catalog import Catalog
from envs.env import WebShopEnv, parse_action
from envs.products import CatalogError, Goal, Product
from envs.reward import RewardInfo, purchase_reward

ENV_ID = "WebShop-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="envs.env:WebShopEnv")

__all__ = [
    "Catalog", "CatalogError", "Goal", "Product", "RewardInfo", "WebShopEnv",
    "parse_action", "purchase_reward", "ENV_ID",
]

"""Models that score candidate actions, their checkpoints, imitation learning.

Public API: `Policy`, `ActOutput`, `EvalOutput` (policies.policy); `PolicyConfig`,
`preset_config` / `PRESETS` (policies.config); `save_checkpoint`, `load_checkpoint`,
`CheckpointMetadata` (policies.checkpoint); `ILStep`, `ILConfig`, `ILTrainer`,
`train_il`, `read_webshop_il` (policies.il); `search_candidates`
(policies.search_queries). Nothing here imports Ray.
"""

from policies.checkpoint import CheckpointMetadata, UnsafeCheckpointError, load_checkpoint, save_checkpoint
from policies.config import PRESETS, PolicyConfig, preset_config
from policies.il import ILConfig, ILFormatError, ILStep, ILTrainer, read_webshop_il, train_il
from policies.policy import ActOutput, EvalOutput, Policy
from policies.search_queries import search_candidates

__all__ = [
    "PRESETS", "ActOutput", "CheckpointMetadata", "EvalOutput", "ILConfig", "ILFormatError",
    "ILStep", "ILTrainer", "Policy", "PolicyConfig", "UnsafeCheckpointError", "load_checkpoint",
    "preset_config", "read_webshop_il", "save_checkpoint", "search_candidates", "train_il",
]

"""6-DoF gripper tracking on recorded or generated RGB-D (Open3D registration, no learned weights).

Entry points: `track_view` (one view's pointmaps), `track_recorded` (a recording), `track_generation`
(a generation); `pose_errors` against ground truth; `gripper_closed` for open / closed. Open3D is
imported only when tracking runs.
"""

from geo4d_studio.tracking.gripper_state import CLOSED_BELOW_M, gripper_closed
from geo4d_studio.tracking.metrics import pose_errors
from geo4d_studio.tracking.model import GripperModel, gripper_model
from geo4d_studio.tracking.scene_tracking import combine_views, scene_model, track_generation, track_recorded
from geo4d_studio.tracking.tracker import FrameTrack, TrackerConfig, ViewTracker, track_view

__all__ = [
    "CLOSED_BELOW_M",
    "FrameTrack",
    "GripperModel",
    "TrackerConfig",
    "ViewTracker",
    "combine_views",
    "gripper_closed",
    "gripper_model",
    "pose_errors",
    "scene_model",
    "track_generation",
    "track_recorded",
    "track_view",
]

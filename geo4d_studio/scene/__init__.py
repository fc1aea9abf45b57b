"""Scene format `geo4d-scene` v1: lazy reader, atomic writer, validation (DESIGN.md §2)."""

from geo4d_studio.scene.camera import Camera
from geo4d_studio.scene.reader import Scene, open_scene
from geo4d_studio.scene.validation import ValidationReport, check_scene, validate_scene
from geo4d_studio.scene.writer import SceneWriter

__all__ = [
    "Camera",
    "Scene",
    "SceneWriter",
    "ValidationReport",
    "check_scene",
    "open_scene",
    "validate_scene",
]

"""Sub-commands of `geo4d-studio`; each module has `register(subparsers)` and imports heavy code lazily."""

COMMAND_MODULES: tuple[str, ...] = (
    "gui",
    "info",
    "make_sample_data",
    "fuse",
    "generate",
    "train",
    "evaluate",
    "track",
    "export",
)

"""Sub-commands of `geo4d-studio`; each module has `register(subparsers)` and imports heavy code lazily."""

COMMANDS: dict[str, str] = {  # command name → module in this package
    "gui": "gui",
    "info": "info",
    "import": "import_data",
    "make-sample-data": "make_sample_data",
    "fuse": "fuse",
    "generate": "generate",
    "train": "train",
    "evaluate": "evaluate",
    "track": "track",
    "export": "export",
}

"""The only Qt code: the Studio's main window, docks, viewports and workers.

Views observe `geo4d_studio.session.Session` and redraw from it; they never call each other.
"""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("QT_API", "pyside6")

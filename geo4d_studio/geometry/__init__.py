"""Camera geometry in numpy (no torch): SE(3), pinhole cameras, cross-view projection, fusion, paths."""

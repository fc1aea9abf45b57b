"""Exports (no torch): trajectories (`trajectory_io`), generated clips and clouds (`clips`), PLY (`ply`)."""

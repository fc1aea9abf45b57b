"""Evaluation metrics: PSNR/SSIM (image), AbsRel/delta1 (depth), gripper mIoU (crossview), FVD (torch)."""

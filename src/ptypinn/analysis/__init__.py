"""Scores and pictures. Imports ``io`` only; library wings below never import it.

* ``metrics`` — bounded alignment, masked SSIM, MS-SSIM, PSNR, MAE, FRC; undefined scores as n/a
* ``report`` — tidy tables, figures and the HTML/Markdown report (matplotlib)
"""

__all__ = ["metrics", "report"]

"""Writing a drawn figure: one place that makes the folder, saves, closes the figure and turns a
file-system failure into one clear error."""

from __future__ import annotations

from pathlib import Path

from deepnets import DeepnetsError


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure to `path` (its folder made) and close it; return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    except (OSError, ValueError) as err:
        raise DeepnetsError(f"cannot write {path}: {err}") from None
    finally:
        plt.close(fig)
    return path

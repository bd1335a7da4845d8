"""spectra_torch: torch adapter for spectra (curvature operators arrive with their issue)."""

__all__: list[str] = []

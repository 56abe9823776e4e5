"""The versions of the packages an analysis depends on: part of every cache key that stores
analysed text, so that an upgrade of an analyzer never serves what the old one made."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_versions(*packages: str) -> list[str]:
    """`name-version` of each package, `name-none` for one that is not installed."""
    parts = []
    for package in packages:
        try:
            parts.append(f"{package}-{version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package}-none")
    return parts

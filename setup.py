"""Package discovery for the folder-per-sub-package layout.

`pyproject.toml` maps each top-level folder onto a sub-package of `ragarbiter` with
`package-dir`; this file lists every package below those folders so that a new
folder ships without editing a hand-kept list. Folders without an `__init__.py` (the shipped
adapters' weight folders) are listed too, so their files ship as package data.
"""

from setuptools import find_namespace_packages, setup

ROOTS = {
    "ragarbiter": "plugin",
    "ragarbiter.retrievers": "retrievers",
    "ragarbiter.assessors": "assessors",
    "ragarbiter.adapters": "adapters",
    "ragarbiter.kernels": "kernels",
}


def discover() -> list[str]:
    packages = []
    for name, folder in ROOTS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]
    return packages


setup(packages=discover())

"""The one packaging fact pyproject.toml cannot state: the package list.

The repository-root ``migrations/`` directory ships inside the wheel as the package
``jp_primary._migrations`` (``[tool.setuptools.package-dir]`` in pyproject.toml maps it), and
pyproject.toml cannot combine package discovery with a package mapped from elsewhere. So the list
is discovered here; everything else about the project is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["jp_primary", "jp_primary.*"]), "jp_primary._migrations"])

"""Package layout pyproject.toml cannot express.

`plugins/` installs as `sdtui_plugins` and `config/` as `sdtui_config`, so nothing generic
(`plugins`, `config`) lands at the top of site-packages.
"""

from setuptools import find_packages, setup


def renamed(source: str, target: str) -> list[str]:
    return [target] + [f"{target}.{name}" for name in find_packages(source)]


setup(
    packages=find_packages(include=["sdtui", "sdtui.*"])
    + renamed("plugins", "sdtui_plugins")
    + renamed("config", "sdtui_config"),
    package_dir={"sdtui_plugins": "plugins", "sdtui_config": "config"},
    package_data={
        "sdtui_config": ["**/*.json", "**/*.yaml", "**/*.csv", "**/*.txt", "**/*.safetensors"]
    },
    include_package_data=True,
)

"""Setup for pip (`pip install -e .`) and colcon (ament_python): both read the metadata here."""

import os
import sys
from glob import glob

from setuptools import find_packages, setup
from setuptools.command.install_scripts import install_scripts

PACKAGE = "gossip_learning"


def tree(src: str) -> list[tuple[str, list[str]]]:
    """data_files entries for every file under ``src``, installed to share/<package>/<src>."""
    entries = []
    for folder, _dirs, files in sorted(os.walk(src)):
        if files:
            paths = sorted(os.path.join(folder, f) for f in files)
            entries.append((os.path.join("share", PACKAGE, folder), paths))
    return entries


class InstallScripts(install_scripts):
    """setuptools writes ``#!python`` into a script's copy for a wheel installer to replace; pip
    does, ``setup.py install`` (colcon's ament_python build) does not, so this names the
    interpreter that runs the install, as its entry-point wrappers do."""

    def run(self) -> None:
        super().run()
        for path in self.get_outputs():
            with open(path, "rb") as fh:
                text = fh.read()
            if text.startswith(b"#!python"):
                with open(path, "wb") as fh:
                    fh.write(b"#!" + os.fsencode(sys.executable) + text[len(b"#!python") :])


setup(
    name=PACKAGE,
    version="0.1.0",
    description=(
        "Decentralised learning on robot swarms: DK-means clusters, bilayer gossip, "
        "cumulative FedAvg"
    ),
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src"),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        *tree("worlds"),
    ],
    # What a robot needs (package.xml's GOSSIP_LEARNING_INSTALL=robot group); simulator runs,
    # plots and the digits data are the ``experiment`` extra.
    install_requires=[
        "numpy>=1.22",
        "scipy>=1.8",
        "pyyaml>=5.4",
    ],
    extras_require={
        "experiment": ["matplotlib>=3.5", "scikit-learn>=1.0"],
        "train": ["torch>=2.0"],
        "vision": ["torch>=2.0", "pillow>=9", "tqdm>=4.60"],
        # Sweeps on a Ray cluster (gossip-learning sweep/reproduce --backend ray); nothing else
        # imports Ray.
        "cluster": ["ray>=2.40,<3", "psutil>=5"],
        # pytest < 9.1: launch_testing's pytest plugin (ROS 2 Jazzy) breaks every run on 9.1+.
        # mutmut 3.8: tools/mutation.py reads its mutant names and verdict codes (pinned minor).
        "dev": [
            "pytest>=7,<9.1",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-PyYAML",
            "hypothesis>=6",
            "jsonschema>=4.18",  # docs/ros-messages.schema.json checked against real messages
            "mutmut>=3.8,<3.9",
        ],
        # a robot whose head trains on an RP2040 coprocessor (docs/rp2040.md)
        "coprocessor": ["pyserial>=3.5"],
        # per-robot Ed25519 keys (defence.identity: robot_keys; gossip-learning keys robots)
        "identity": ["cryptography>=41"],
    },
    zip_safe=True,
    # The node executables are plain scripts, not console_scripts: the wrapper setuptools writes
    # for an entry point (colcon's install) scans the installed distributions before any of the
    # package's code runs, seconds on a loaded robot in which a Ctrl-C printed a traceback.
    scripts=sorted(glob("scripts/*_node")),
    cmdclass={"install_scripts": InstallScripts},
    entry_points={"console_scripts": ["gossip-learning = gossip_learning.cli:main"]},
)

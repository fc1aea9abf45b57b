#!/usr/bin/env bash
# Install Geo4D Studio into a virtual environment (default: .venv beside this repo).
# Idempotent: a second run checks what is there and returns in seconds.
#   GEO4D_VENV=/path/to/venv  choose the environment
#   GEO4D_PYTHON=python3.11   choose the interpreter (Python >= 3.11)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${GEO4D_VENV:-$repo/.venv}"
python="${GEO4D_PYTHON:-python3}"
say() { printf 'install: %s\n' "$*"; }

# 1. System libraries: open3d needs libusb; Qt's xcb platform and Xvfb for the GUI and its tests;
#    ffmpeg-free MP4 export comes from imageio-ffmpeg's own binary.
system_packages=(libusb-1.0-0 libgl1 libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
  libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xinerama0
  libdbus-1-3 xvfb xauth)
missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}"
    say "install them as root, e.g.: sudo apt-get install ${missing[*]}"
    exit 1
  fi
fi

# 2. Python environment. torch is pinned to the CPU build first: an open range would pull a CUDA build.
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "Python >= 3.11 is required ($python is $("$python" --version 2>&1)); set GEO4D_PYTHON"
  exit 1
fi
[[ -x "$venv/bin/python" ]] || { say "creating $venv"; "$python" -m venv "$venv"; }
stamp="$venv/.geo4d-install-stamp"
want="$(cat "$repo/pyproject.toml" "$repo/installer/install.sh" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$venv/bin/python" -c 'import geo4d_studio' 2>/dev/null; then
  say "up to date ($venv)"
  exit 0
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
say "installing torch (CPU build) and Geo4D Studio into $venv"
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e "$repo[dev]"

# 3. Desktop menu entry and icon for this user (XDG), pointing at this environment.
share="${XDG_DATA_HOME:-$HOME/.local/share}"
if mkdir -p "$share/applications" "$share/icons/hicolor/scalable/apps" 2>/dev/null; then
  cp "$repo/ui/icons/geo4d-studio.svg" "$share/icons/hicolor/scalable/apps/geo4d-studio.svg"
  sed "s|^Exec=geo4d-studio|Exec=$venv/bin/geo4d-studio|" "$repo/installer/geo4d-studio.desktop" \
    >"$share/applications/geo4d-studio.desktop"
  say "desktop entry: $share/applications/geo4d-studio.desktop"
fi
echo "$want" >"$stamp"
say "done: $venv/bin/geo4d-studio"

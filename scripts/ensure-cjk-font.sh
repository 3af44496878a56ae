#!/usr/bin/env bash
# Install the CJK font contracts embed (Debian/Ubuntu package fonts-wqy-zenhei) when this user
# may without a prompt: root, or `sudo -n` works. Otherwise say so and go on: contracts then
# use the standard PDF font STSong-Light, not embedded (see README). Quiet when the font is there.
set -uo pipefail

PACKAGE=fonts-wqy-zenhei
# Where distributions put it (field_api/contracts/pdf.py KNOWN_FONT_PATHS); tests override.
DEFAULT_FONTS=/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc:/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc
DEFAULT_FONTS+=:/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc:/usr/local/share/fonts/wqy-zenhei.ttc
IFS=: read -r -a FONTS <<<"${ENSURE_CJK_FONT_PATHS:-$DEFAULT_FONTS}"
for font in "${FONTS[@]}"; do
  [[ -f "$font" ]] && exit 0
done
if [[ -n "${FIELDOPS_CONTRACT_FONT_PATH:-}" && -f "${FIELDOPS_CONTRACT_FONT_PATH}" ]]; then
  exit 0
fi

fallback() {
  echo "note: $1; contracts will use the non-embedded PDF font STSong-Light." >&2
  echo "      For embedded fonts install it yourself: sudo apt-get install $PACKAGE" >&2
  exit 0
}

command -v apt-get >/dev/null 2>&1 || fallback "no apt-get here to install $PACKAGE"
if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  fallback "$PACKAGE is not installed and installing it needs a password"
fi

export DEBIAN_FRONTEND=noninteractive
echo "installing the contract font ($PACKAGE)..." >&2
# Refresh the package lists only when apt does not know the package yet (a fresh image).
if ! apt-cache show "$PACKAGE" >/dev/null 2>&1; then
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
    fallback "apt-get update failed (offline?)"
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PACKAGE" >/dev/null ||
  fallback "apt-get install $PACKAGE failed"

#!/usr/bin/env bash
# Download openly licensed real music from Debian's archive and unpack it (nothing is installed).
# Usage: scripts/fetch-demo-music.sh DEST [PACKAGE...]
#   default packages: asc-music (3 MP3s, GPL-2+) and fretsonfire-songs-sectoid (4 songs, MIT-style)
set -euo pipefail
dest=${1:?usage: fetch-demo-music.sh DEST [PACKAGE...]}
shift
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(asc-music fretsonfire-songs-sectoid)
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for package in "${packages[@]}"; do
  if [ -d "$dest/$package" ]; then
    echo "$package: already in $dest"
    continue
  fi
  if ! (cd "$work" && apt-get download "$package" >/dev/null 2>&1); then
    # A fresh machine has no package lists yet.
    apt-get update >/dev/null
    (cd "$work" && apt-get download "$package" >/dev/null)
  fi
  dpkg-deb -x "$work"/"$package"_*.deb "$work/$package"
  mkdir -p "$dest/$package"
  # Keep the audio (and its licence files), not the rest of the package; a rhythm-game song
  # folder's song.ini holds its tags (artist, name, ...) and its notes.mid the tempo map.
  find "$work/$package" -type f \( -iname '*.ogg' -o -iname '*.mp3' -o -iname '*.flac' -o -iname '*.wav' \
       -o -iname 'copyright' -o -iname '*.mid' -o -iname 'song.ini' \) -print0 |
    while IFS= read -r -d '' file; do
      rel=${file#"$work/$package/"}
      mkdir -p "$dest/$package/$(dirname "$rel")"
      mv "$file" "$dest/$package/$rel"
    done
  echo "$package: $(find "$dest/$package" -type f \( -iname '*.ogg' -o -iname '*.mp3' \) | wc -l) audio files"
done

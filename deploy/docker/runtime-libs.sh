#!/usr/bin/env bash
# The shared libraries that the image's binaries load, and nothing else: the
# runtime stage of deploy/docker/Dockerfile gets these instead of Debian's
# packages, whose dependencies (Debian's LibTorch alone pulls in Mesa, LLVM,
# Qt, GDAL, Samba...) the binaries never load.
#
#   runtime-libs.sh collect OUT BINARY...   in the build stage: lists every
#       library `ldd` resolves for the binaries (fails on one it cannot) in
#       OUT/libs.tsv: where the loader finds it (its directory's real path,
#       the name it asks for), the file it really is, its Debian package; and
#       per package its dpkg status entry (OUT/status/<package>) and copyright
#       file (OUT/copyright/usr/share/doc/<package>/copyright).
#   runtime-libs.sh select ROOT IN OUT      in a stage FROM the runtime base,
#       with the build stage's file system at ROOT: copies to OUT the listed
#       libraries this base lacks, and for their packages
#       OUT/var/lib/dpkg/status.d/<package> (where image scanners such as
#       Trivy and Grype find packages not installed by dpkg, as in distroless
#       images) and OUT/usr/share/doc/<package>/copyright.
#
# Libraries are found by `ldd`, so a library opened with dlopen() only would
# be missed: tests/containers runs the golden requests in the image, and
# compares the libraries mapped by the running server with `ldd`'s list.
set -euo pipefail

collect() {
  local out="$1" path real dest pkg line file
  shift
  mkdir -p "$out/status" "$out/copyright"
  : > "$out/libs.tsv"
  local listing
  listing="$(ldd "$@")"
  if grep -q "not found" <<< "$listing"; then
    echo "runtime-libs: unresolved libraries:" >&2
    grep "not found" <<< "$listing" >&2
    exit 1
  fi
  # "soname => /path (0x...)" lines; the loader itself is "/path (0x...)".
  local paths=()
  # (ldd names each binary first, as "/path/binary:", when given several.)
  mapfile -t paths < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 }
                            $1 ~ /^\// && $1 !~ /:$/ { print $1 }' \
                         <<< "$listing" | sort -u)

  # Every path resolved in one call (a fork per file takes a minute on a
  # loaded machine), and each directory once: /lib is a link to /usr/lib.
  local reals=() dir
  mapfile -t reals < <(readlink -f "${paths[@]}")
  declare -A real_dir=()
  for path in "${paths[@]}"; do real_dir["${path%/*}"]=""; done
  for dir in "${!real_dir[@]}"; do real_dir["$dir"]="$(readlink -f "$dir")"; done

  # Owners from dpkg's file lists in one pass (dpkg-query -S per file takes
  # minutes); dpkg may know a file under either side of merged /usr.
  local queries i
  queries="$(mktemp)"
  for i in "${!paths[@]}"; do
    real="${reals[$i]}"
    printf '%s\n%s\n%s\n' "$real" "${real#/usr}" "${paths[$i]}" >> "$queries"
  done
  declare -A owner=()
  # Lines: /var/lib/dpkg/info/<package>[:<arch>].list:<file>
  while IFS= read -r line; do
    file="${line#*.list:}"
    pkg="${line%%.list:*}"
    pkg="${pkg##*/}"
    owner["$file"]="${pkg%%:*}"
  done < <(grep -H -F -x -f "$queries" /var/lib/dpkg/info/*.list || true)
  rm -f "$queries"

  for i in "${!paths[@]}"; do
    path="${paths[$i]}"
    real="${reals[$i]}"
    # Keep the name the loader looks for (libblas.so.3, not the alternative's
    # target) in the directory's real location.
    dest="${real_dir[${path%/*}]}/${path##*/}"
    pkg="${owner[$real]:-${owner[${real#/usr}]:-${owner[$path]:-}}}"
    if [[ -z "$pkg" ]]; then
      echo "runtime-libs: no Debian package owns $real" >&2
      exit 1
    fi
    printf '%s\t%s\t%s\n' "$dest" "$real" "$pkg" >> "$out/libs.tsv"
  done

  # Each package's status entry (one query, split at the blank lines) and
  # its copyright file.
  local pkgs=()
  mapfile -t pkgs < <(cut -f3 "$out/libs.tsv" | sort -u)
  dpkg-query -s "${pkgs[@]}" | awk -v dir="$out/status" '
    /^Package: / { name = $2 }
    /^$/ { close(file); file = ""; next }
    { if (file == "") file = dir "/" name; print > file }'
  local copyrights=()
  for pkg in "${pkgs[@]}"; do
    [[ -e "/usr/share/doc/$pkg/copyright" ]] && copyrights+=("/usr/share/doc/$pkg/copyright")
  done
  if [[ ${#copyrights[@]} -gt 0 ]]; then
    cp --parents -t "$out/copyright" "${copyrights[@]}"
  fi
}

select_missing() {
  local root="$1" in="$2" out="$3" dest real pkg
  declare -A kept=() dirs=()
  local copies=()
  while IFS=$'\t' read -r dest real pkg; do
    [[ -e "$dest" ]] && continue  # the base image has it already
    dirs["$out${dest%/*}"]=1
    copies+=("$root$real" "$out$dest")
    kept[$pkg]=1
  done < "$in/libs.tsv"
  mkdir -p "$out/var/lib/dpkg/status.d" "${!dirs[@]}"
  local i
  for ((i = 0; i < ${#copies[@]}; i += 2)); do
    cp "${copies[$i]}" "${copies[$((i + 1))]}"
  done
  local statuses=() copyrights=()
  for pkg in "${!kept[@]}"; do
    statuses+=("$in/status/$pkg")
    if [[ -e "$in/copyright/usr/share/doc/$pkg/copyright" ]]; then
      copyrights+=("usr/share/doc/$pkg/copyright")
    fi
  done
  if [[ ${#statuses[@]} -gt 0 ]]; then
    cp -t "$out/var/lib/dpkg/status.d" "${statuses[@]}"
  fi
  if [[ ${#copyrights[@]} -gt 0 ]]; then
    (cd "$in/copyright" && cp --parents -t "$out" "${copyrights[@]}")
  fi
  echo "runtime-libs: $((${#copies[@]} / 2)) libraries of ${#kept[@]} packages" \
       "added to the base"
}

case "${1:-}" in
  collect) shift; collect "$@" ;;
  select) shift; select_missing "$@" ;;
  *) echo "usage: $0 collect OUT BINARY... | select ROOT IN OUT" >&2; exit 2 ;;
esac

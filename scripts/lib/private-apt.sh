# shellcheck shell=bash
# Fetch Debian packages into a private folder and unpack them, changing nothing outside it: apt-get with its own
# lists, cache and (optionally empty) status, then dpkg -x. Sourced by install-godot.sh and install-toolchain.sh.

# private_apt_mirror: prints the Debian mirror this system's own apt sources use (not the security one).
private_apt_mirror() {
  local f mirror=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    [[ -n $mirror ]] && break
  done
  if [[ -z $mirror ]]; then
    mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '$2 !~ /security/ { print $2; exit }')
  fi
  [[ -n $mirror ]] || return 1
  echo "$mirror"
}

# private_apt_fetch WORK SUITE ARCH MODE PACKAGE...: downloads PACKAGEs into WORK/cache/archives.
#   SUITE  "sid", or "system" for the system's own sources (its suite, its mirrors);
#   ARCH   a Debian architecture (amd64, arm64) or "native";
#   MODE   "closure": every dependency, as if nothing were installed (for a root that runs on its own loader);
#          "missing": only what this system lacks (for tools that run on the system's own libraries);
#          "only":    the named packages alone, without dependencies.
private_apt_fetch() {
  local work=$1 suite=$2 arch=$3 mode=$4
  shift 4
  local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed_by=""
  rm -rf "$work/lists" "$work/cache" "$work/etc"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/parts" "$work/etc/preferences.d"
  local opts=(
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d"
    -o "APT::Install-Recommends=false"
    -o "Debug::NoLocking=true"
    -o "APT::Sandbox::User=root"
  )
  if [[ $suite == sid ]]; then
    mirror=$(private_apt_mirror) || { echo "private-apt: no Debian mirror in /etc/apt sources" >&2; return 1; }
    [[ -f $keyring ]] && signed_by="Signed-By: $keyring"
    {
      printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\n' "$mirror"
      if [[ $arch != native ]]; then echo "Architectures: $arch"; fi
      if [[ -n $signed_by ]]; then echo "$signed_by"; fi
    } > "$work/etc/parts/sid.sources"
    opts+=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/etc/parts")
  fi
  if [[ $arch != native ]]; then
    opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch")
  fi
  if [[ $mode != missing ]]; then
    : > "$work/status"
    opts+=(-o "Dir::State::status=$work/status")
  fi
  apt-get "${opts[@]}" -qq update >&2 || return 1
  if [[ $mode == only ]]; then
    (cd "$work/cache/archives" && apt-get "${opts[@]}" -qq download "$@" >&2) || return 1
  else
    apt-get "${opts[@]}" -qq -y --download-only install "$@" >&2 || return 1
  fi
}

# private_apt_unpack WORK ROOT: unpacks every deb fetched into WORK into ROOT, then drops the downloads.
private_apt_unpack() {
  local work=$1 root=$2 deb n=0
  mkdir -p "$root"
  for deb in "$work"/cache/archives/*.deb; do
    [[ -f $deb ]] || continue
    dpkg -x "$deb" "$root"
    n=$((n + 1))
  done
  rm -rf "$work/cache" "$work/lists"
  (( n > 0 )) || { echo "private-apt: nothing was downloaded into $work" >&2; return 1; }
  echo "private-apt: unpacked $n packages into $root" >&2
}

# SPDX-License-Identifier: GPL-2.0
#
# Shell functions shared by the setup scripts (sourced, not run). Callers set CACHE first.
#
# apt with private state: each suite and architecture gets its own directory under
# $CACHE/apt-<name>, its index read from the machine's own mirror (never a host name written
# here), verified with the installed Debian keyring. Nothing is installed system-wide.

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m[setup] WARNING:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }
pinned() { grep -v '^#' "$1" | grep -v '^[[:space:]]*$' | head -n1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages LABEL PKG...: installs the missing ones from the machine's own apt sources.
ensure_packages() {
	local label=$1 missing=() p
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "$label: all present"
		return
	fi
	say "$label: installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
		install -y -q --no-install-recommends "${missing[@]}"
}

# The mirror the machine's own apt configuration uses.
debian_mirror() {
	local mirror
	mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || die "no Debian mirror found in the machine's apt sources"
	echo "$mirror"
}

# apt_opts NAME [ARCH]: options that point apt at the private state $CACHE/apt-NAME.
apt_opts() {
	local d=$CACHE/apt-$1
	echo "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/dev/null" \
		"-o Dir::State::Lists=$d/lists -o Dir::Cache=$d/cache" \
		"-o Dir::State::Status=$d/status -o APT::Sandbox::User=root" \
		${2:+-o APT::Architecture=$2 -o APT::Architectures=$2}
}

# apt_private_update NAME SUITE [ARCH] [deb-src]: writes the private sources.list for SUITE
# (binary packages, plus source packages when the 4th argument is "deb-src") and updates its
# index, at most once per setup run.
apt_private_update() {
	local name=$1 suite=$2 arch=${3:-} src=${4:-} d=$CACHE/apt-$1 mirror line
	[ -f "$d/.updated-$$" ] && return
	mirror=$(debian_mirror)
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	touch "$d/status"
	line="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
	{
		echo "deb $line"
		[ "$src" = deb-src ] && echo "deb-src $line"
	} >"$d/sources.list"
	say "apt (private state $name): updating the $suite index${arch:+ ($arch)}"
	# shellcheck disable=SC2046
	apt-get $(apt_opts "$name" "$arch") update -q >&2
	rm -f "$d"/.updated-*
	touch "$d/.updated-$$"
}

# madison NAME PKG [ARCH]: the versions of PKG in the private index NAME.
madison() {
	# shellcheck disable=SC2046
	apt-cache $(apt_opts "$1" "${3:-}") madison "$2" | awk -F'|' '{gsub(/ /, "", $2); print $2}'
}

# fetch_deb NAME PKG VER [ARCH]: downloads PKG=VER into $CACHE/debs once; prints the file.
fetch_deb() {
	local name=$1 pkg=$2 ver=$3 arch=${4:-} dest=$CACHE/debs file
	mkdir -p "$dest"
	file=$(ls "$dest/${pkg}_${ver//:/%3a}_"${arch:-*}.deb 2>/dev/null | head -n1 || true)
	if [ -z "$file" ]; then
		say "downloading $pkg $ver${arch:+ ($arch)}"
		# shellcheck disable=SC2046
		(cd "$dest" && apt-get $(apt_opts "$name" "$arch") download "$pkg=$ver") >&2
		file=$(ls "$dest/${pkg}_${ver//:/%3a}_"${arch:-*}.deb | head -n1)
	fi
	echo "$file"
}

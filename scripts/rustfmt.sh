#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt over every Rust file of the project, with the kernel tree's .rustfmt.toml
# (the kernel's own `make rustfmt` only walks its source tree). Pass --check to verify only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
config=
if [ -n "${KDIR:-}" ] && [ -f "$KDIR/source/.rustfmt.toml" ]; then
	config=$KDIR/source/.rustfmt.toml
elif [ -f "${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}/env" ]; then
	# shellcheck disable=SC1091
	. "${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}/env"
	config=$KSRC/.rustfmt.toml
fi
args=(--edition 2021)
[ -n "$config" ] && args+=(--config-path "$config")
dirs=(); for d in rust tests samples fuzz; do [ -d "$d" ] && dirs+=("$d"); done
find "${dirs[@]}" -name '*.rs' -not -path '*/target/*' -not -path 'tests/host/*' -print0 |
	xargs -0 rustfmt "${args[@]}" "$@"

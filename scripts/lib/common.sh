# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared definitions for the fork's scripts: the pinned QEMU base, where
# things are cached, and how Debian's archive is reached.  Sourced, not run.

# The pinned base: Debian trixie's "qemu" source package.  The orig tarball
# is upstream QEMU 10.0.13 with Debian's +ds repacking (the prebuilt firmware
# blobs are removed); the checksums below pin it.
RDMA_BASE_VERSION=10.0.13
RDMA_DEB_PACKAGE=qemu
RDMA_DEB_VERSION=1:10.0.13+ds-0+deb13u1
RDMA_DEB_SUITE=trixie
RDMA_ORIG_TARBALL=qemu_10.0.13+ds.orig.tar.xz
RDMA_ORIG_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
RDMA_DEBIAN_TARBALL=qemu_10.0.13+ds-0+deb13u1.debian.tar.xz
RDMA_DEBIAN_SHA256=da73c092f5684c551b0334d675eb16a3dec91e1edea94759cfb1102fa4a0364e

# Where downloads and other reusable inputs live: outside the repository, so
# a fresh clone reuses them and "git clean" never throws them away.
rdma_cache_dir() {
    echo "${QEMU_RDMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-rdma-fork}"
}

rdma_prog=$(basename "$0")

die() {
    printf '%s: error: %s\n' "$rdma_prog" "$*" >&2
    exit 1
}

note() {
    printf '%s: %s\n' "$rdma_prog" "$*" >&2
}

# The URI of the Debian archive this machine already uses for bookworm.
# It is read from the apt configuration at run time so that no archive host
# name is ever written into the repository.
rdma_debian_archive_uri() {
    local f uri
    # deb822 .sources files: a stanza with URIs: and Suites: containing bookworm
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri=$(awk '
            function flush() {
                if (uri != "" && suites ~ /(^| )bookworm( |$)/ && comps ~ /(^| )main( |$)/)
                    { print uri; found = 1; exit }
                uri = ""; suites = ""; comps = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { $1 = ""; suites = $0 " " }
            /^Components:/ { $1 = ""; comps = $0 " " }
            END { if (!found) flush() }' "$f")
        if [ -n "$uri" ]; then
            echo "${uri%/}"
            return 0
        fi
    done
    # one-line sources.list format
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; exit } }' "$f")
        if [ -n "$uri" ]; then
            echo "${uri%/}"
            return 0
        fi
    done
    return 1
}

# The apt sources the fork needs beyond a stock Debian 12 machine:
# bookworm-backports (meson >= 1.5, python3-pycotap) and trixie sources (the
# pinned QEMU source package).  Only source entries are added for trixie, so
# no binary package is ever upgraded from it.
RDMA_APT_SOURCES=/etc/apt/sources.list.d/qemu-rdma-fork.sources

rdma_apt_sources_text() {
    local uri=$1
    cat <<EOT
# Added by the qemu restricted-DMA fork (scripts/install-deps, ./configure).
Types: deb deb-src
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $uri
Suites: $RDMA_DEB_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
}

# Make sure the extra apt sources exist.  Returns 0 if apt's lists must be
# updated (the file was created or changed), 1 if nothing changed.
rdma_ensure_apt_sources() {
    local uri want
    uri=$(rdma_debian_archive_uri) ||
        die "cannot find a Debian bookworm archive in this machine's apt sources (/etc/apt/sources.list*); add one, then run this again"
    want=$(rdma_apt_sources_text "$uri")
    if [ -f "$RDMA_APT_SOURCES" ] && [ "$(cat "$RDMA_APT_SOURCES")" = "$want" ]; then
        return 1
    fi
    [ "$(id -u)" = 0 ] ||
        die "apt needs the entries in $RDMA_APT_SOURCES; run scripts/install-deps as root (or with sudo) first"
    printf '%s\n' "$want" > "$RDMA_APT_SOURCES"
    note "wrote $RDMA_APT_SOURCES (bookworm-backports, $RDMA_DEB_SUITE sources from $uri)"
    return 0
}

# The repository's own files that belong in the QEMU tree: they live at
# their QEMU path, as they are at the top of the series, whose patches add
# and change them; scripts/assemble copies edits of them into the assembled
# tree.  Everything else in the repository is harness.
RDMA_PLACED_DIRS="hw include docs/system docs/devel tests/qtest"

# List the fork's own QEMU files, relative to the repository top.
rdma_own_files() {
    local top=$1 d
    for d in $RDMA_PLACED_DIRS; do
        [ -d "$top/$d" ] || continue
        (cd "$top" && find "$d" -type f ! -name '*~' ! -name '.*' ! -name '*.orig' \
            ! -name '*.rej' -print)
    done | LC_ALL=C sort
}

# Is PATH (relative to a tree's top) where the fork's own files live?
rdma_is_own_path() {
    local d
    for d in $RDMA_PLACED_DIRS; do
        case $1 in "$d"/*) return 0 ;; esac
    done
    return 1
}

# The series, in order: the patch file names listed in patches/series.
rdma_series() {
    local top=$1
    [ -f "$top/patches/series" ] || return 0
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$top/patches/series"
}

# git, with an identity for the commits the scripts make in build trees.
rdma_git() {
    git -c user.name="QEMU restricted-DMA fork" \
        -c user.email="qemu-rdma-fork@localhost" \
        -c core.autocrlf=false -c advice.detachedHead=false "$@"
}

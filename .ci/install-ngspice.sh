#!/usr/bin/env bash
# ngspice with the KLU solver, as `make install` wants it (issue 30; `make system-deps` runs it).
# Where it sits: before anything of anasim runs; anasim's --solver auto then picks KLU.
#
# Keeps an installed ngspice whose `ngspice -v` says KLU (and a libngspice.so for PySpice). On
# Debian 12 (bookworm) installs ngspice, libngspice0 and libngspice0-dev from Debian's own
# bookworm-backports (46, "Compiled with KLU Direct Linear Solver"; bookworm's 39.3 has no KLU and
# a rebuild cannot add it), through a sources entry that reuses the URIs and key of the machine's
# own Debian entry for the suite bookworm. Nothing else is upgraded: backports are pinned at 100,
# and a simulated install is checked first (it stops if anything else would be upgraded).
# Elsewhere: the distribution's ngspice if it has KLU; otherwise it stops and says what to do.
#
#   .ci/install-ngspice.sh                 install if needed
#   .ci/install-ngspice.sh --print-entry   print the bookworm-backports entry it would add, change nothing
#
# Environment (for tests against a copy of /etc/apt): ANASIM_APT_ETC (/etc/apt),
# ANASIM_OS_RELEASE (/etc/os-release), ANASIM_BACKPORTS_LIST (the file it writes).
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
PKGS=(ngspice libngspice0 libngspice0-dev)
APT_ETC=${ANASIM_APT_ETC:-/etc/apt}
OS_RELEASE=${ANASIM_OS_RELEASE:-/etc/os-release}
LIST=${ANASIM_BACKPORTS_LIST:-$APT_ETC/sources.list.d/anasim-bookworm-backports.sources}
TODO="install ngspice 42 or newer built with KLU (Debian 12: add bookworm-backports to your apt sources, then
  apt-get install -t bookworm-backports ${PKGS[*]}), then run make again"

# grep reads all its input (no -q): with pipefail, grep -q leaving early could kill the writer with
# SIGPIPE and fail the pipeline although the line is there (seen: a KLU ngspice taken for none)
has_klu() { command -v ngspice >/dev/null && ngspice -v 2>/dev/null | grep "KLU" >/dev/null; }
has_lib() { ldconfig -p 2>/dev/null | grep 'libngspice\.so ' >/dev/null; }
found() { # which ngspice, its version
    local v
    v=$(ngspice -v 2>/dev/null | grep -o 'ngspice-[0-9.]*' | head -1 || true)
    echo "$(command -v ngspice || echo 'no ngspice on PATH')${v:+ ($v)}"
}

# "URI<TAB>key" of the first deb entry for the suite bookworm (not -updates, -security): deb822
# stanzas (*.sources, read a stanza at a time: fields come in any order) first, then one-line
# entries (sources.list, *.list; options such as [signed-by=...] skipped)
bookworm_entry() {
    local f
    for f in "$APT_ETC"/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
        {
            types = ""; uris = ""; suites = ""; key = ""; enabled = "yes"
            for (i = 1; i <= NF; i++) {
                line = $i
                if (line ~ /^#/) continue
                name = tolower(line); sub(/:.*/, "", name)
                value = line; sub(/^[^:]*:[ \t]*/, "", value)
                if (name == "types") types = " " value " "
                else if (name == "uris") { split(value, u, /[ \t]+/); uris = u[1] }
                else if (name == "suites") suites = " " value " "
                else if (name == "signed-by") key = value
                else if (name == "enabled") enabled = tolower(value)
            }
            if (enabled != "no" && types ~ / deb / && suites ~ /[ \t]bookworm[ \t]/ && uris != "") {
                print uris "\t" key; exit
            }
        }' "$f"
    done | head -1 | grep . && return
    # (cat fails on a missing file, and pipefail would fail the whole pipeline with it)
    { cat "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list 2>/dev/null || true; } | sed -E 's/#.*//' |
        awk '$1 == "deb" {
            key = ""; line = $0
            if (match(line, /\[[^]]*\]/)) {
                n = split(substr(line, RSTART + 1, RLENGTH - 2), o, /[ \t]+/)
                for (i = 1; i <= n; i++) if (o[i] ~ /^signed-by=/) { key = o[i]; sub(/^signed-by=/, "", key) }
                line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
            }
            split(line, f, /[ \t]+/)
            if (f[3] == "bookworm") { print f[2] "\t" key; exit }
        }' | grep .
}

entry_text() { # the deb822 entry for bookworm-backports, from the machine's bookworm entry
    local line uri key
    line=$(bookworm_entry) || return 1
    uri=${line%%$'\t'*}
    key=${line#*$'\t'}
    # a one-line key (a keyring file); an inline armoured key or none: Debian's archive keyring
    [[ -n $key && $key != *BEGIN* ]] || key=/usr/share/keyrings/debian-archive-keyring.gpg
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key"
}

if [ "${1:-}" = --print-entry ]; then
    entry_text || { echo "anasim: no Debian 'bookworm' entry in $APT_ETC to reuse" >&2; exit 1; }
    exit 0
fi

if has_klu && has_lib; then exit 0; fi

. "$OS_RELEASE"
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    if ! grep -rqsE '^[^#]*bookworm-backports' "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/; then
        if ! text=$(entry_text); then
            echo "anasim: no Debian 'bookworm' entry found in $APT_ETC to reuse for bookworm-backports;" >&2
            echo "  $TODO" >&2
            exit 1
        fi
        echo "anasim: adding $LIST (suite bookworm-backports of $(echo "$text" | sed -n 's/^URIs: //p')) for ngspice 46 with KLU"
        echo "$text" | $SUDO tee "$LIST" >/dev/null
    fi
    $SUDO apt-get update -qq
    # a dry run first: only these packages may be upgraded (new dependencies may be installed)
    plan=$(apt-get install -s -t bookworm-backports "${PKGS[@]}" 2>&1) || {
        echo "$plan" >&2
        echo "anasim: apt cannot install ${PKGS[*]} from bookworm-backports (above);" >&2
        echo "  $TODO" >&2
        exit 1
    }
    others=$(echo "$plan" | awk '$1 == "Inst" && $3 ~ /^\[/ { print $2 }' | grep -vxF -e ngspice -e libngspice0 -e libngspice0-dev || true)
    if [ -n "$others" ]; then
        echo "anasim: installing ${PKGS[*]} from bookworm-backports would also upgrade: $(echo $others);" >&2
        echo "  anasim does not upgrade other packages: $TODO" >&2
        exit 1
    fi
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports "${PKGS[@]}" >/dev/null; then
        echo "anasim: could not install ${PKGS[*]} from bookworm-backports (see apt's message above);" >&2
        echo "  $TODO" >&2
        exit 1
    fi
elif command -v apt-get >/dev/null; then
    # another Debian or Ubuntu: its own ngspice, kept only if it has KLU (checked below)
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PKGS[@]}" >/dev/null || true
fi
hash -r
if ! has_klu || ! has_lib; then
    lib=$(has_lib && echo "libngspice.so found" || echo "no libngspice.so (libngspice0-dev)")
    echo "anasim: found $(found), $(has_klu && echo "with KLU" || echo "without KLU"), $lib;" >&2
    echo "  $TODO" >&2
    exit 1
fi
echo "anasim: $(found) with KLU"

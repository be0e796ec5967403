#!/usr/bin/env bash
# tests/make_fallbacks.sh - `make` on a machine that lacks something still builds what it can
# and says what it skipped (the README's first command on a fresh machine).
#
#   usage: tests/make_fallbacks.sh [ignored]   (run from the repository root; make test passes ./ablate-cpu)
#
# Checks, without building anything (make -n -B prints every command it would run):
#   - no CUDA toolkit (CUDA=/nonexistent): `make` builds ablate-cpu and examples/train_tiny, not
#     ablate, and says so; `make test` skips the NVRTC compile check.
# and with the corpus written to a temporary file (CORPUS=...):
#   - no bible command and no way to install it (BIBLE, APT_GET pointing nowhere): `make`'s
#     default-corpus step exits 0 with one line naming the fallback text and `make corpus`;
#     `make corpus` fails.
#   - an install that fails (APT_GET=false): the same line, exit 0.
#   - a bible command (a stand-in printing two labelled verses): the corpus is written with the
#     verse labels removed.
# Ends with "N passed, N failed".
set -u
unset MAKEFLAGS MAKELEVEL # a make test -j2 above us must not change what -n prints
SCRIPT_TAG=make
. tests/script_check.sh
FALLBACK=/usr/share/common-licenses/GPL-3

out=$(make -n -B CUDA=/nonexistent all 2>&1)
echo "$out" | grep -q -- "-o ablate-cpu " && echo "$out" | grep -q -- "-o examples/train_tiny " \
    && ! echo "$out" | grep -q -- "-o ablate " && echo "$out" | grep -q "no CUDA toolkit at /nonexistent"
check $? "make CUDA=/nonexistent: ablate-cpu and train_tiny, no ablate, one line saying so" "$(echo "$out" | head -c 600)"
out=$(make -n -B CUDA=/nonexistent test 2>&1)
! echo "$out" | grep -q "nvrtc_compile " && echo "$out" | grep -q "NVRTC compile check of the kernels is skipped"
check $? "make test CUDA=/nonexistent: no NVRTC compile check, one line saying so" "$(echo "$out" | grep -m3 nvrtc)"

corpus=$tmp/data/corpus.txt
out=$(make --no-print-directory default-corpus CORPUS="$corpus" BIBLE=/nonexistent/bible APT_GET=/nonexistent/apt-get 2>&1)
rc=$?
[ $rc -eq 0 ] && [ ! -e "$corpus" ] && [ "$(echo "$out" | wc -l)" -eq 1 ] \
    && echo "$out" | grep -q "trains on $FALLBACK instead" && echo "$out" | grep -q "make corpus"
check $? "make without bible or apt-get: exit 0, one line naming the fallback" "rc $rc: $out"
[ -r "$FALLBACK" ]
check $? "the fallback text $FALLBACK is there" "cannot read it"
out=$(make --no-print-directory corpus CORPUS="$corpus" BIBLE=/nonexistent/bible APT_GET=/nonexistent/apt-get 2>&1)
[ $? -ne 0 ] && [ ! -e "$corpus" ]
check $? "make corpus without bible: fails" "$out"
if [ "$(id -u)" = 0 ]; then
    out=$(make --no-print-directory default-corpus CORPUS="$corpus" BIBLE=/nonexistent/bible APT_GET=false 2>&1)
    rc=$?
    [ $rc -eq 0 ] && [ ! -e "$corpus" ] && echo "$out" | grep -q "installing bible-kjv" \
        && echo "$out" | grep -q "trains on $FALLBACK instead"
    check $? "make as root, the bible-kjv install fails: exit 0, the fallback named" "rc $rc: $out"
fi

# a stand-in for Debian's bible: "Book1:1 text" lines
printf '#!/bin/sh\nprintf "Ge1:1 In the beginning God created the heaven and the earth.\\n1Jo1:2 (For the life was manifested.)\\n"\n' > "$tmp/bible"
chmod +x "$tmp/bible"
out=$(make --no-print-directory default-corpus CORPUS="$corpus" BIBLE="$tmp/bible" APT_GET=false 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$corpus" 2>/dev/null)" = "In the beginning God created the heaven and the earth.
(For the life was manifested.)" ]
check $? "make with a bible command: the corpus without verse labels" "rc $rc: $out; $(head -c 200 "$corpus" 2>/dev/null)"

finish

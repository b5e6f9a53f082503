#!/bin/sh
# Vendors the browser code of the HTTP face's API docs (/docs: Swagger UI, /redoc: ReDoc)
# into expound/web/static/vendor/<package>-<version>/, from the npm registry at the pinned
# versions below, and writes expound/web/static/vendor/VENDORED.json: for each package its
# version, source tarball, the registry's integrity string, and the sha256 of every file
# copied (tests/unit/test_web_docs.py checks the files against it).
#
# Each tarball's sha512 is checked against `npm view <pkg>@<version> dist.integrity`
# before anything is copied out of it. To update: change a version, run this script (needs
# npm, openssl, python3 and the registry), run the tests, commit the folder.
#
# redoc stays on 2.x: FastAPI's get_redoc_html loads a classic script, and redoc 3's
# standalone bundle is an ES module (it ends in `export{...}`), which such a script tag
# cannot run.
set -eu

SWAGGER_UI_DIST=5.35.0
REDOC=2.5.4

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENDOR=$ROOT/expound/web/static/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: >"$WORK/files.tsv"

# vendor PACKAGE VERSION FILE...: FILE is a path inside the package; copied under its name.
vendor() {
    package=$1
    version=$2
    shift 2
    expected=$(npm view "$package@$version" dist.integrity)
    tarball=$(npm view "$package@$version" dist.tarball)
    (cd "$WORK" && npm pack --silent "$package@$version" >/dev/null)
    archive=$WORK/$package-$version.tgz
    actual="sha512-$(openssl dgst -sha512 -binary "$archive" | base64 -w0)"
    if [ "$actual" != "$expected" ]; then
        echo "vendor_docs: $package@$version tarball is $actual, registry says $expected" >&2
        exit 1
    fi
    rm -rf "$VENDOR/$package"-*
    folder=$VENDOR/$package-$version
    mkdir -p "$folder"
    for file in "$@"; do
        tar -xzf "$archive" -C "$WORK" "package/$file"
        name=$(basename "$file")
        cp "$WORK/package/$file" "$folder/$name"
        sum=$(sha256sum "$folder/$name" | cut -d' ' -f1)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$package" "$version" "$tarball" "$expected" "$name" "$sum" >>"$WORK/files.tsv"
    done
}

vendor swagger-ui-dist "$SWAGGER_UI_DIST" \
    swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png \
    LICENSE NOTICE
vendor redoc "$REDOC" \
    bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE

python3 - "$WORK/files.tsv" "$VENDOR/VENDORED.json" <<'EOF'
import json
import sys

packages: dict[str, dict] = {}
with open(sys.argv[1]) as rows:
    for row in rows:
        package, version, tarball, integrity, name, sha256 = row.rstrip("\n").split("\t")
        entry = packages.setdefault(
            package,
            {"name": package, "version": version, "tarball": tarball,
             "integrity": integrity, "files": {}},
        )
        entry["files"][name] = sha256
with open(sys.argv[2], "w") as manifest:
    json.dump({"packages": list(packages.values())}, manifest, indent=2)
    manifest.write("\n")
EOF
echo "vendor_docs: wrote $VENDOR"

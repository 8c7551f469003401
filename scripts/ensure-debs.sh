#!/bin/sh
# Install the named Debian packages that are not installed yet (root only).
# Without root, print what is missing and carry on: tests that need a peer skip with a message,
# except under CI=true where they fail.
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then
  echo "installing Debian packages:$missing"
  apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "not root: please install these Debian packages yourself:$missing" >&2
fi

#!/usr/bin/env bash
# Installs the real servers the tests run against (see internal/testservers)
# with apt, but only what is missing. Without root, or without apt-get, it
# says what is missing and exits 0: the tests then skip, or fail under
# FRAGCACHE_REQUIRE_SERVERS=1, which `make test` sets on purpose.
set -euo pipefail

# One line per dependency: a command name or a file glob, then the
# Debian/Ubuntu package that provides it. Add new servers here.
deps=(
	"redis-server redis-server"
	"redis-cli redis-tools"
	"memcached memcached"
	"saslpasswd2 sasl2-bin"
	"/usr/lib/*/sasl2/libplain.so* libsasl2-modules"
	"/usr/lib/uwsgi/plugins/cache_plugin.so uwsgi-core"
	# headless browser for examples/site's browser test (chromedp)
	"chromium chromium"
)

have() {
	case $1 in
	/*) compgen -G "$1" >/dev/null ;;
	*) command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
	esac
}

missing=()
for dep in "${deps[@]}"; do
	read -r what pkg <<<"$dep"
	if ! have "$what"; then
		case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "install-test-deps: missing packages: ${missing[*]}" >&2
	echo "install-test-deps: not root or no apt-get, so not installing them; server tests will fail under FRAGCACHE_REQUIRE_SERVERS=1" >&2
	exit 0
fi

echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The tests start their own servers on free ports; the stock services the
# packages start under systemd would only hold 6379 and 11211 for nothing.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	systemctl disable --now redis-server.service memcached.service 2>/dev/null || true
fi

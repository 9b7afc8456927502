#!/bin/sh
# make-certs.sh: development certificates for HTTPS and client-certificate tests (ECDSA P-256); never committed.
#
#   scripts/make-certs.sh DIR
#
# Creates in DIR (once; a second run does nothing):
#   ca.crt ca.key                 development CA
#   server.crt server.key         server certificate for localhost, 127.0.0.1 and ::1, signed by the CA
#   device.crt device.key         client certificate CN=device-0001, signed by the CA
#   rogue-ca.crt rogue-ca.key     a second CA the device does not trust
#   rogue.crt rogue.key           client certificate CN=device-0001 signed by the rogue CA
set -eu
dir=${1:-build/certs}
mkdir -p "$dir"
cd "$dir"
if [ -s ca.crt ] && [ -s server.crt ] && [ -s device.crt ] && [ -s rogue.crt ]; then
  exit 0
fi
command -v openssl >/dev/null || { echo "make-certs: openssl is missing: apt-get install openssl" >&2; exit 1; }
days=3650
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name subject
  key "$1.key"
  openssl req -new -x509 -key "$1.key" -sha256 -days $days -subj "$2" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name subject ca ext
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -sha256 -days $days \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "/O=postern development/CN=postern development CA"
leaf server "/O=postern development/CN=localhost" ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
leaf device "/O=postern development/CN=device-0001" ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
ca rogue-ca "/O=somebody else/CN=untrusted CA"
leaf rogue "/O=somebody else/CN=device-0001" rogue-ca \
  "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ./*.srl
echo "make-certs: development CA, server, device and rogue certificates in $dir (for development only)"

#!/bin/sh
# Makes the TLS material of one worker pod's Docker daemon, fresh on every pod start:
#   DIR/server/{ca.pem,cert.pem,key.pem}  for dockerd (--tlsverify), a certificate for 127.0.0.1
#   DIR/client/{ca.pem,cert.pem,key.pem}  for the Ray container (DOCKER_CERT_PATH)
# The CA's private key is deleted once both certificates are signed, so nothing can issue another.
# Needs only a POSIX shell and openssl (both are in the docker:dind image).
set -eu

dir="${1:?usage: docker-tls.sh DIR}"
days="${SEEDBED_DOCKER_TLS_DAYS:-825}"
umask 077

rm -rf "$dir/ca" "$dir/server" "$dir/client"
mkdir -p "$dir/ca" "$dir/server" "$dir/client"

cat > "$dir/ca/ext.cnf" <<'CNF'
[ ca ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ client ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF

newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# The CA: self-signed, valid for this pod's lifetime (and then some).
newkey "$dir/ca/key.pem"
openssl req -new -key "$dir/ca/key.pem" -subj "/CN=seedbed worker pod docker CA" -out "$dir/ca/csr.pem"
openssl x509 -req -in "$dir/ca/csr.pem" -signkey "$dir/ca/key.pem" -days "$days" \
  -extfile "$dir/ca/ext.cnf" -extensions ca -out "$dir/ca/cert.pem" 2>/dev/null

# sign NAME EXTENSIONS: a key and a certificate under DIR/NAME, signed by the CA.
sign() {
  newkey "$dir/$1/key.pem"
  openssl req -new -key "$dir/$1/key.pem" -subj "/CN=seedbed worker pod docker $1" -out "$dir/$1/csr.pem"
  openssl x509 -req -in "$dir/$1/csr.pem" -CA "$dir/ca/cert.pem" -CAkey "$dir/ca/key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" \
    -extfile "$dir/ca/ext.cnf" -extensions "$2" -out "$dir/$1/cert.pem" 2>/dev/null
  cp "$dir/ca/cert.pem" "$dir/$1/ca.pem"
  rm -f "$dir/$1/csr.pem"
  openssl verify -CAfile "$dir/$1/ca.pem" "$dir/$1/cert.pem" >/dev/null
}
sign server server
sign client client

rm -rf "$dir/ca"
# The Ray container may run as another user than this script, without capabilities: the client
# part must be readable by it. The volume is this pod's own, in memory.
chmod 0755 "$dir/server" "$dir/client"
chmod 0644 "$dir/client/ca.pem" "$dir/client/cert.pem" "$dir/client/key.pem" "$dir/server/ca.pem" \
  "$dir/server/cert.pem"
echo "docker-tls: made a CA, a server certificate for 127.0.0.1 and a client certificate in $dir"

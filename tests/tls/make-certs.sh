#!/bin/sh
# make-certs.sh DIR - the TLS tests' certificates, made fresh with the openssl CLI ($OPENSSL, default
# `openssl`) into DIR (which must exist). Every leaf names localhost unless it says otherwise.
#   ca.crt          the trusted test CA (ECDSA P-256)
#   ok.crt          DNS:localhost + IP:127.0.0.1 + IP:::1, ECDSA P-256 key ec.key, signed by ca
#   rsa.crt         the same names with an RSA 2048 key (rsa.key), signed by ca
#   expired.crt     valid only in January 2020;  notyet.crt  valid only from 2090
#   wrong.crt       DNS:wrong.example only;       self.crt    self-signed
#   unknown.crt     signed by other-ca (not trusted)
#   chained.crt     signed by the intermediate int.crt (signed by ca); serve it with -cert_chain int.crt
#                   (without it the chain is incomplete)
#   garbage-bundle.pem  other-ca.crt, a certificate block that is not a certificate, then ca.crt
#   hashed/         ca.crt under its subject-hash name (a CA directory as openssl rehash makes)
# All keys but rsa.key are P-256 and all leaves but self.crt are issued with `openssl ca`.
set -eu
d=${1:?usage: make-certs.sh DIR}
o=${OPENSSL:-openssl}
cd "$d"
mkdir -p db/new hashed
: > db/index.txt
echo 1000 > db/serial

cat > req.cnf <<'EOF'
[req]
distinguished_name = dn
[dn]
EOF

cat > ca.cnf <<EOF
[ca]
default_ca = tca
[tca]
database = $PWD/db/index.txt
new_certs_dir = $PWD/db/new
serial = $PWD/db/serial
default_md = sha256
policy = pol
unique_subject = no
default_days = 3650
[pol]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
[wrong]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

ec_key() { "$o" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# root NAME CN: a self-signed CA certificate.
root() {
	ec_key "$1.key"
	"$o" req -config req.cnf -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-addext subjectKeyIdentifier=hash 2>/dev/null
}

# issue OUT KEY CA EXT CN [ca options...]: sign a request for KEY with CA's key.
issue() {
	out=$1 key=$2 ca=$3 ext=$4 cn=$5
	shift 5
	"$o" req -config req.cnf -new -key "$key" -subj "/CN=$cn" -out "$out.csr" 2>/dev/null
	"$o" ca -batch -notext -config ca.cnf -cert "$ca.crt" -keyfile "$ca.key" -extensions "$ext" \
		-in "$out.csr" -out "$out.crt" "$@" 2>/dev/null
	rm -f "$out.csr"
}

root ca "fetchd test CA"
root other-ca "fetchd unknown CA"
ec_key ec.key
"$o" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
ec_key int.key

issue ok ec.key ca leaf localhost
issue rsa rsa.key ca leaf localhost
issue expired ec.key ca leaf localhost -startdate 20200101000000Z -enddate 20200201000000Z
issue notyet ec.key ca leaf localhost -startdate 20900101000000Z -enddate 20910101000000Z
issue wrong ec.key ca wrong wrong.example
issue unknown ec.key other-ca leaf localhost
issue int int.key ca inter "fetchd test intermediate"
issue chained ec.key int leaf localhost
"$o" req -config req.cnf -new -x509 -key ec.key -out self.crt -days 3650 -subj /CN=localhost \
	-addext basicConstraints=critical,CA:FALSE -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	2>/dev/null

{
	cat other-ca.crt
	printf -- '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUsIGp1c3QgdGV4dA==\n-----END CERTIFICATE-----\n'
	cat ca.crt
} > garbage-bundle.pem

cp ca.crt "hashed/$("$o" x509 -noout -subject_hash -in ca.crt).0"

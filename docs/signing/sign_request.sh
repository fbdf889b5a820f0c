#!/bin/sh
# Sign a request to the gateway (RFC 9421, ed25519) with curl and openssl.
set -e
base_url=${OB_BASE_URL:-http://127.0.0.1:8080}
kid=${OB_KID:-demo-2026-11}
key=${OB_KEY:-conf/demo/demo-ed25519.pem}
if [ -n "$OB_TOKEN" ]; then
    credential="Authorization: Bearer $OB_TOKEN"
else
    credential="X-API-Key: $OB_API_KEY"
fi
body='{"debtor_account": {"number": "6222020000000001"}, "creditor_account": {"number": "6222020000000201", "name": "Shanghai Supplier Co., Ltd.", "bank_code": "OBKCNSH"}, "amount": {"value": "12.50", "currency": "CNY"}, "reference": "invoice 42"}'

digest="sha-256=:$(printf '%s' "$body" | openssl dgst -sha256 -binary | base64 -w0):"
# @target-uri: the URL as the gateway sees it (host in lowercase)
target_uri="$(printf '%s' "$base_url" | tr 'A-Z' 'a-z')/v1/payments"
params="(\"@method\" \"@target-uri\" \"content-digest\");created=$(date +%s);keyid=\"$kid\";nonce=\"$(openssl rand -hex 16)\""
base_file=$(mktemp)
printf '"@method": POST\n"@target-uri": %s\n"content-digest": %s\n"@signature-params": %s' \
    "$target_uri" "$digest" "$params" > "$base_file"
signature=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$base_file" | base64 -w0)
rm -f "$base_file"

# store the Idempotency-Key before sending: a retry sends it again
curl -sS -w ' %{http_code}\n' "$base_url/v1/payments" \
    -H "$credential" \
    -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" \
    -H 'Content-Type: application/json' \
    -H "Content-Digest: $digest" \
    -H "Signature-Input: sig=$params" \
    -H "Signature: sig=:$signature:" \
    --data-binary "$body"

# Sign a request to the gateway (RFC 9421, ed25519) with Python's
# `cryptography` (Debian: python3-cryptography) and the standard library.
import base64, hashlib, json, os, secrets, time, urllib.error, urllib.request
import uuid
from urllib.parse import urlsplit
from cryptography.hazmat.primitives.serialization import load_pem_private_key

base_url = os.environ.get("OB_BASE_URL", "http://127.0.0.1:8080")
if os.environ.get("OB_TOKEN"):
    credential = {"Authorization": "Bearer " + os.environ["OB_TOKEN"]}
else:
    credential = {"X-API-Key": os.environ["OB_API_KEY"]}
kid = os.environ.get("OB_KID", "demo-2026-11")
with open(os.environ.get("OB_KEY", "conf/demo/demo-ed25519.pem"), "rb") as f:
    key = load_pem_private_key(f.read(), password=None)

url = base_url + "/v1/payments"
body = json.dumps({
    "debtor_account": {"number": "6222020000000001"},
    "creditor_account": {"number": "6222020000000201",
                         "name": "Shanghai Supplier Co., Ltd.",
                         "bank_code": "OBKCNSH"},
    "amount": {"value": "12.50", "currency": "CNY"},
    "reference": "invoice 42",
}).encode()

digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
target = urlsplit(url)
target_uri = f"{target.scheme}://{target.netloc.lower()}{target.path}" + (
    f"?{target.query}" if target.query else "")
params = (f'("@method" "@target-uri" "content-digest")'
          f';created={int(time.time())};keyid="{kid}"'
          f';nonce="{secrets.token_urlsafe(16)}"')
signature_base = (f'"@method": POST\n'
                  f'"@target-uri": {target_uri}\n'
                  f'"content-digest": {digest}\n'
                  f'"@signature-params": {params}')
signature = base64.b64encode(key.sign(signature_base.encode())).decode()

request = urllib.request.Request(url, data=body, method="POST", headers={
    **credential,
    "Idempotency-Key": str(uuid.uuid4()),   # store it: a retry sends it again
    "Content-Type": "application/json",
    "Content-Digest": digest,
    "Signature-Input": "sig=" + params,
    "Signature": f"sig=:{signature}:",
})
try:
    with urllib.request.urlopen(request) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())

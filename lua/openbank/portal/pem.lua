-- A PEM public key (RSA, EC P-256/384/521, Ed25519) as a JWK, through
-- OpenSSL 3 from the LuaJIT FFI, for the portal's key upload.
--
--   local jwk, err = require("openbank.portal.pem").to_jwk(text, kid)
--
-- err is a sentence for the developer.  kid, when not given, is the key's
-- RFC 7638 thumbprint.

local ffi = require "ffi"
local crypto = require "openbank.portal.crypto"

local ffi_new = ffi.new
local ffi_string = ffi.string
local str_find = string.find
local concat = table.concat


local _M = {}


ffi.cdef[[
typedef struct bio_st BIO;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct bignum_st BIGNUM;
BIO *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(BIO *a);
EVP_PKEY *PEM_read_bio_PUBKEY(BIO *bp, EVP_PKEY **x, void *cb, void *u);
void EVP_PKEY_free(EVP_PKEY *pkey);
int EVP_PKEY_get_base_id(const EVP_PKEY *pkey);
int EVP_PKEY_get_bits(const EVP_PKEY *pkey);
int EVP_PKEY_get_bn_param(const EVP_PKEY *pkey, const char *key_name,
                          BIGNUM **bn);
int EVP_PKEY_get_utf8_string_param(const EVP_PKEY *pkey,
                                   const char *key_name, char *str,
                                   size_t max_buf_sz, size_t *out_sz);
int EVP_PKEY_get_raw_public_key(const EVP_PKEY *pkey, unsigned char *pub,
                                size_t *len);
int BN_bn2binpad(const BIGNUM *a, unsigned char *to, int tolen);
int BN_num_bits(const BIGNUM *a);
void BN_free(BIGNUM *a);
void ERR_clear_error(void);
]]


local lib = crypto.lib


local EVP_PKEY_RSA = 6
local EVP_PKEY_EC = 408
local EVP_PKEY_ED25519 = 1087

local CURVES = {
    prime256v1 = { "P-256", 32, "ES256" },
    secp384r1 = { "P-384", 48, "ES384" },
    secp521r1 = { "P-521", 66, "ES512" },
}


local function bn(pkey, name, len)
    local pp = ffi_new("BIGNUM *[1]")
    if lib.EVP_PKEY_get_bn_param(pkey, name, pp) ~= 1 then
        return nil
    end
    local b = pp[0]
    len = len or math.floor((lib.BN_num_bits(b) + 7) / 8)
    local buf = ffi_new("unsigned char[?]", len)
    local n = lib.BN_bn2binpad(b, buf, len)
    lib.BN_free(b)
    if n ~= len then
        return nil
    end
    return crypto.b64url(ffi_string(buf, len))
end


-- RFC 7638: SHA-256 of the required members, in lexical order
local function thumbprint(jwk)
    local parts
    if jwk.kty == "RSA" then
        parts = { '{"e":"', jwk.e, '","kty":"RSA","n":"', jwk.n, '"}' }
    elseif jwk.kty == "EC" then
        parts = { '{"crv":"', jwk.crv, '","kty":"EC","x":"', jwk.x,
                  '","y":"', jwk.y, '"}' }
    else
        parts = { '{"crv":"', jwk.crv, '","kty":"OKP","x":"', jwk.x, '"}' }
    end
    return crypto.b64url(crypto.sha256(concat(parts)))
end
_M.thumbprint = thumbprint


local function read(pkey)
    local id = lib.EVP_PKEY_get_base_id(pkey)

    if id == EVP_PKEY_RSA then
        local bits = lib.EVP_PKEY_get_bits(pkey)
        if bits < 2048 then
            return nil, "This RSA key has " .. bits .. " bits: the gateway "
                        .. "takes RSA keys of 2048 bits or more."
        end
        local n, e = bn(pkey, "n"), bn(pkey, "e")
        if not n or not e then
            return nil, "OpenSSL cannot read this RSA key's numbers."
        end
        return { kty = "RSA", n = n, e = e, alg = "RS256", use = "sig" }

    elseif id == EVP_PKEY_EC then
        local buf = ffi_new("char[64]")
        local len = ffi_new("size_t[1]")
        if lib.EVP_PKEY_get_utf8_string_param(pkey, "group", buf, 64, len)
           ~= 1
        then
            return nil, "OpenSSL cannot tell this EC key's curve."
        end
        local group = ffi_string(buf, len[0])
        local c = CURVES[group]
        if not c then
            return nil, "This EC key is on the curve " .. group .. ": the "
                        .. "gateway takes P-256, P-384 and P-521."
        end
        local x, y = bn(pkey, "qx", c[2]), bn(pkey, "qy", c[2])
        if not x or not y then
            return nil, "OpenSSL cannot read this EC key's point."
        end
        return { kty = "EC", crv = c[1], x = x, y = y, alg = c[3],
                 use = "sig" }

    elseif id == EVP_PKEY_ED25519 then
        local buf = ffi_new("unsigned char[32]")
        local len = ffi_new("size_t[1]", 32)
        if lib.EVP_PKEY_get_raw_public_key(pkey, buf, len) ~= 1 then
            return nil, "OpenSSL cannot read this Ed25519 key."
        end
        return { kty = "OKP", crv = "Ed25519",
                 x = crypto.b64url(ffi_string(buf, len[0])), alg = "EdDSA",
                 use = "sig" }
    end

    return nil, "This kind of key is not one the gateway takes: use RSA "
                .. "(2048 bits or more), EC P-256/P-384/P-521 or Ed25519."
end


function _M.to_jwk(text, kid)
    if str_find(text, "PRIVATE KEY-----", 1, true) then
        return nil, "This is a private key. Upload only its public key "
                    .. "(openssl pkey -pubout): a private key never leaves "
                    .. "your systems."
    end
    if str_find(text, "-----BEGIN CERTIFICATE-----", 1, true) then
        return nil, "This is a certificate, not a public key: register it "
                    .. "under client certificates, or upload its public "
                    .. "key (openssl x509 -pubkey -noout)."
    end
    if not str_find(text, "-----BEGIN PUBLIC KEY-----", 1, true) then
        return nil, "This is neither a JWKS (a JSON object with \"keys\") "
                    .. "nor a PEM public key (-----BEGIN PUBLIC KEY-----)."
    end

    local bio = lib.BIO_new_mem_buf(text, #text)
    if bio == nil then
        return nil, "OpenSSL is out of memory."
    end
    local pkey = lib.PEM_read_bio_PUBKEY(bio, nil, nil, nil)
    lib.BIO_free(bio)
    lib.ERR_clear_error()
    if pkey == nil then
        return nil, "The PEM block is damaged: OpenSSL cannot read a "
                    .. "public key from it."
    end

    local jwk, err = read(pkey)
    lib.EVP_PKEY_free(pkey)
    if not jwk then
        return nil, err
    end

    jwk.kid = kid or thumbprint(jwk)
    return jwk
end


return _M

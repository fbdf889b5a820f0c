-- The portal's cryptography, on OpenSSL 3 through the LuaJIT FFI:
-- scrypt password hashes (EVP_KDF), random tokens, SHA-256 and
-- constant-time comparison.
--
--   local crypto = require "openbank.portal.crypto"
--   local stored = crypto.hash_password("correct horse battery")
--   local ok = crypto.verify_password("correct horse battery", stored)
--   local token = crypto.token()            -- 43 characters, base64url
--   local digest = crypto.sha256_hex(token)
--
-- A stored hash is "scrypt$N$r$p$<salt>$<key>", salt (16 bytes) and key
-- (32 bytes) in base64url: the same as `openssl kdf -keylen 32 -kdfopt
-- pass:... -kdfopt hexsalt:... -kdfopt n:N -kdfopt r:8 -kdfopt p:1 SCRYPT`
-- computes (docs/portal.md).

local ffi = require "ffi"

local ffi_new = ffi.new
local ffi_string = ffi.string
local ngx_encode_base64 = ngx.encode_base64
local ngx_decode_base64 = ngx.decode_base64
local str_byte = string.byte
local str_format = string.format
local str_gsub = string.gsub
local str_match = string.match
local tonumber = tonumber
local concat = table.concat


local _M = {}


-- RFC 7914's parameters for interactive logins: 16 MiB and some 50 ms
-- of one core per hash.
_M.SCRYPT_N = 16384
_M.SCRYPT_R = 8
_M.SCRYPT_P = 1

local SALT_LEN = 16
local KEY_LEN = 32
local MAXMEM = 64 * 1024 * 1024


if not pcall(ffi.typeof, "struct ossl_param_st") then
    ffi.cdef[[
typedef struct evp_kdf_st EVP_KDF;
typedef struct evp_kdf_ctx_st EVP_KDF_CTX;
typedef struct ossl_param_st {
    const char *key;
    unsigned int data_type;
    void *data;
    size_t data_size;
    size_t return_size;
} OSSL_PARAM;
]]
end

ffi.cdef[[
EVP_KDF *EVP_KDF_fetch(void *libctx, const char *algorithm,
                       const char *properties);
void EVP_KDF_free(EVP_KDF *kdf);
EVP_KDF_CTX *EVP_KDF_CTX_new(EVP_KDF *kdf);
void EVP_KDF_CTX_free(EVP_KDF_CTX *ctx);
int EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen,
                   const OSSL_PARAM params[]);
OSSL_PARAM OSSL_PARAM_construct_octet_string(const char *key, void *buf,
                                             size_t bsize);
OSSL_PARAM OSSL_PARAM_construct_uint64(const char *key, uint64_t *buf);
OSSL_PARAM OSSL_PARAM_construct_uint32(const char *key, uint32_t *buf);
OSSL_PARAM OSSL_PARAM_construct_end(void);
int RAND_bytes(unsigned char *buf, int num);
int CRYPTO_memcmp(const void *a, const void *b, size_t len);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
]]


local lib
do
    local ok, l = pcall(ffi.load, "crypto")
    if not ok then
        ok, l = pcall(ffi.load, "libcrypto.so.3")
    end
    lib = ok and l or ffi.C
end
_M.lib = lib     -- libcrypto, for openbank.portal.pem


local kdf   -- the fetched SCRYPT implementation, once per worker


function _M.random(n)
    local buf = ffi_new("unsigned char[?]", n)
    if lib.RAND_bytes(buf, n) ~= 1 then
        error("RAND_bytes failed")
    end
    return ffi_string(buf, n)
end


function _M.b64url(s)
    local b = ngx_encode_base64(s, true)
    b = str_gsub(b, "[+/]", { ["+"] = "-", ["/"] = "_" })
    return b
end


function _M.unb64url(s)
    s = str_gsub(s, "[-_]", { ["-"] = "+", ["_"] = "/" })
    local pad = #s % 4
    if pad == 2 then
        s = s .. "=="
    elseif pad == 3 then
        s = s .. "="
    elseif pad == 1 then
        return nil
    end
    return ngx_decode_base64(s)
end


-- 32 random bytes in base64url: session ids, CSRF and verification tokens
function _M.token()
    return _M.b64url(_M.random(32))
end


function _M.hex(s)
    return (str_gsub(s, ".", function(c)
        return str_format("%02x", str_byte(c))
    end))
end


function _M.sha256(s)
    local md = ffi_new("unsigned char[32]")
    lib.SHA256(s, #s, md)
    return ffi_string(md, 32)
end


function _M.sha256_hex(s)
    return _M.hex(_M.sha256(s))
end


-- true when a and b are the same string, in time that depends on their
-- length only
function _M.equal(a, b)
    if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then
        return false
    end
    return lib.CRYPTO_memcmp(a, b, #a) == 0
end


function _M.scrypt(pass, salt, n, r, p, keylen)
    if not kdf then
        kdf = lib.EVP_KDF_fetch(nil, "SCRYPT", nil)
        if kdf == nil then
            return nil, "OpenSSL has no SCRYPT"
        end
    end

    local ctx = lib.EVP_KDF_CTX_new(kdf)
    if ctx == nil then
        return nil, "EVP_KDF_CTX_new failed"
    end

    local pbuf = ffi_new("char[?]", #pass + 1, pass)
    local sbuf = ffi_new("char[?]", #salt + 1, salt)
    local vn = ffi_new("uint64_t[1]", n)
    local vr = ffi_new("uint32_t[1]", r)
    local vp = ffi_new("uint32_t[1]", p)
    local vm = ffi_new("uint64_t[1]", MAXMEM)
    local params = ffi_new("OSSL_PARAM[7]")
    params[0] = lib.OSSL_PARAM_construct_octet_string("pass", pbuf, #pass)
    params[1] = lib.OSSL_PARAM_construct_octet_string("salt", sbuf, #salt)
    params[2] = lib.OSSL_PARAM_construct_uint64("n", vn)
    params[3] = lib.OSSL_PARAM_construct_uint32("r", vr)
    params[4] = lib.OSSL_PARAM_construct_uint32("p", vp)
    params[5] = lib.OSSL_PARAM_construct_uint64("maxmem_bytes", vm)
    params[6] = lib.OSSL_PARAM_construct_end()

    local out = ffi_new("unsigned char[?]", keylen)
    local rc = lib.EVP_KDF_derive(ctx, out, keylen, params)
    lib.EVP_KDF_CTX_free(ctx)

    if rc ~= 1 then
        return nil, "EVP_KDF_derive(SCRYPT) failed"
    end

    return ffi_string(out, keylen)
end


function _M.hash_password(pass)
    local salt = _M.random(SALT_LEN)
    local key, err = _M.scrypt(pass, salt, _M.SCRYPT_N, _M.SCRYPT_R,
                               _M.SCRYPT_P, KEY_LEN)
    if not key then
        return nil, err
    end

    return concat({ "scrypt", _M.SCRYPT_N, _M.SCRYPT_R, _M.SCRYPT_P,
                    _M.b64url(salt), _M.b64url(key) }, "$")
end


-- A hash that is not of this form verifies nothing.  Cost parameters are
-- bounded so that a stored hash cannot make a login take minutes.
function _M.verify_password(pass, stored)
    local n, r, p, salt, key = str_match(stored or "",
        "^scrypt%$(%d+)%$(%d+)%$(%d+)%$([%w_-]+)%$([%w_-]+)$")
    n, r, p = tonumber(n), tonumber(r), tonumber(p)
    if not n or n < 2 or n > 1048576 or r < 1 or r > 32 or p < 1 or p > 16
    then
        return false
    end

    salt, key = _M.unb64url(salt), _M.unb64url(key)
    if not salt or not key or #key < 16 or #key > 64 then
        return false
    end

    local got = _M.scrypt(pass, salt, n, r, p, #key)
    return got ~= nil and _M.equal(got, key)
end


return _M

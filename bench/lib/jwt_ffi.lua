-- A peer of the gateway's token check for the benchmark (the scenario
-- token-luaffi, docs/benchmarks.md): an access token verified in Lua,
-- the way Kong's and APISIX's JWT plugins do it, through LuaJIT's FFI to
-- OpenSSL, the public key parsed once per worker.  It checks what the
-- gateway checks of a token: the header (alg PS256, typ at+jwt, the
-- key's kid), the signature, iss, aud, exp and nbf, and the scope.
--
--   access_by_lua_block {
--       require("jwt_ffi").check("/path/gw.pub.pem", "kid", "https://iss",
--                                "accounts")
--   }

local ffi = require "ffi"
local cjson = require "cjson.safe"
local b64 = require "ngx.base64"

local C = ffi.load("crypto")

ffi.cdef[[
typedef struct bio_st BIO;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
BIO *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(BIO *a);
EVP_PKEY *PEM_read_bio_PUBKEY(BIO *bp, EVP_PKEY **x, void *cb, void *u);
EVP_MD_CTX *EVP_MD_CTX_new(void);
const EVP_MD *EVP_sha256(void);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx,
                         const EVP_MD *type, void *e, EVP_PKEY *pkey);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig,
                     size_t siglen, const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_CTX_set_rsa_padding(EVP_PKEY_CTX *ctx, int pad_mode);
int EVP_PKEY_CTX_set_rsa_pss_saltlen(EVP_PKEY_CTX *ctx, int saltlen);
void ERR_clear_error(void);
]]

local RSA_PKCS1_PSS_PADDING = 6
local RSA_PSS_SALTLEN_DIGEST = -1

local _M = {}

local pkey, mdctx                    -- once per worker
local pctx = ffi.new("EVP_PKEY_CTX *[1]")


local function load(file)
    local f = assert(io.open(file))
    local pem = f:read("*a")
    f:close()
    local bio = C.BIO_new_mem_buf(pem, #pem)
    pkey = C.PEM_read_bio_PUBKEY(bio, nil, nil, nil)
    C.BIO_free(bio)
    assert(pkey ~= nil, "no public key in " .. file)
    mdctx = C.EVP_MD_CTX_new()
end


local function verify(input, sig)
    if C.EVP_DigestVerifyInit(mdctx, pctx, C.EVP_sha256(), nil, pkey) ~= 1
       or C.EVP_PKEY_CTX_set_rsa_padding(pctx[0], RSA_PKCS1_PSS_PADDING) ~= 1
       or C.EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx[0], RSA_PSS_SALTLEN_DIGEST)
          ~= 1
    then
        C.ERR_clear_error()
        return false
    end
    local rc = C.EVP_DigestVerify(mdctx, sig, #sig, input, #input)
    C.ERR_clear_error()
    return rc == 1
end


local function deny()
    ngx.header["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return ngx.exit(401)
end


function _M.check(keyfile, kid, iss, scope)
    if not pkey then
        load(keyfile)
    end

    local auth = ngx.var.http_authorization
    if not auth or auth:sub(1, 7) ~= "Bearer " then
        return deny()
    end

    local h, c, s = auth:match("^Bearer ([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
    if not h then
        return deny()
    end

    local header = cjson.decode(b64.decode_base64url(h) or "")
    if type(header) ~= "table" or header.alg ~= "PS256"
       or header.typ ~= "at+jwt" or header.kid ~= kid
    then
        return deny()
    end

    local sig = b64.decode_base64url(s)
    if not sig or not verify(h .. "." .. c, sig) then
        return deny()
    end

    local claims = cjson.decode(b64.decode_base64url(c) or "")
    local now = ngx.time()
    if type(claims) ~= "table" or claims.iss ~= iss or claims.aud ~= iss
       or type(claims.exp) ~= "number" or claims.exp <= now
       or (claims.nbf ~= nil and (type(claims.nbf) ~= "number"
                                  or claims.nbf > now))
       or type(claims.scope) ~= "string"
       or not (" " .. claims.scope .. " "):find(" " .. scope .. " ", 1, true)
    then
        return deny()
    end
end


return _M

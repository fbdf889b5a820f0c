
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The partner registry: partners and credentials made through the Admin
 * API, beside the static ones of openbank_partner blocks, in one
 * namespace of names, client ids and key hashes.
 *
 * Its records live in the zone's REGISTRY table ("p<name>" a partner,
 * "c<id>" a credential, "a<seq>" an audit event; "i<client id>" and
 * "h<type><hash>" are indexes made from them, never written to disk)
 * and in the registry journal under openbank_state (journal.c): a change
 * is applied to the zone under one lock, with its checks (a name, client
 * id or hash taken), then its records go to the journal, and the caller
 * answers once they are durable.  At start the master replays the
 * journal into the zone and compacts it.
 *
 * Each worker sees the registry as ready partners (a "view": partner
 * structs with their plan, scopes, quotas, parsed JWKS and unsealed HMAC
 * secret, the API keys sorted by hash), made again when the zone's
 * generation of the registry moves (one lookup, on a request that the
 * static partners did not answer) or when a credential expires.  A view
 * is freed once no request holds it.
 *
 * HMAC secrets must be usable, so they are sealed (AES-256-GCM) with the
 * key in "<openbank_state>/registry.key", made at the first start; every
 * other secret is kept as its SHA-256 only.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_journal.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_state.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_util.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


#define NGX_HTTP_OPENBANK_REG_PUT_RECORD   1    /* record types */
#define NGX_HTTP_OPENBANK_REG_DEL_RECORD   2
#define NGX_HTTP_OPENBANK_REG_KEY_FILE     "registry.key"
#define NGX_HTTP_OPENBANK_REG_TOUCH        10   /* s between last_used */
#define NGX_HTTP_OPENBANK_REG_SKEW_MAX     600  /* openbank_clock_skew's */


typedef struct ngx_http_openbank_reg_view_s  ngx_http_openbank_reg_view_t;


/* a registry partner as a worker sees it */

typedef struct {
    ngx_http_openbank_partner_t   partner;     /* first: the same pointer */
    ngx_array_t                   creds;       /* ngx_http_openbank_reg_cred_t
                                                  * */
    ngx_array_t                   jwk_creds;   /* uint64_t, per JWK */
    ngx_http_openbank_jwks_t      jwks;
    int64_t                       hmac_created;
} ngx_http_openbank_reg_partner_t;


typedef struct {
    uint64_t                          id;
    ngx_uint_t                        type;
    u_char                            hash[NGX_HTTP_OPENBANK_HASH_LEN];
    ngx_http_openbank_reg_partner_t  *partner;
    time_t                            touched;
} ngx_http_openbank_reg_cred_t;


struct ngx_http_openbank_reg_view_s {
    ngx_pool_t                   *pool;
    uint64_t                      generation;
    time_t                        expires;     /* a credential's, 0: none */
    ngx_uint_t                    refs;
    ngx_uint_t                    stale;
    ngx_array_t                   partners;    /* ..._reg_partner_t *,
                                                  by client id */
    ngx_array_t                   keys;        /* ..._reg_cred_t *, API
                                                  keys by hash */
    ngx_array_t                   creds;       /* ..._reg_cred_t *, by id */
};


/* a record copied out of the zone */

typedef struct {
    ngx_str_t                     key;
    ngx_str_t                     value;
} ngx_http_openbank_reg_rec_t;


typedef struct {
    ngx_http_openbank_reg_change_t  *ch;
    ngx_pool_t                      *pool;
    ngx_array_t                      cascade;  /* ngx_str_t: deleted keys */
    ngx_str_t                        audit_key;
    ngx_str_t                        audit_value;
    uint64_t                         generation;
    uint64_t                         sync_seq;  /* cluster_sync.c's */
} ngx_http_openbank_reg_apply_t;


typedef struct {
    ngx_pool_t                   *pool;
    ngx_array_t                  *out;         /* ..._reg_rec_t */
    u_char                        prefix;      /* 0: p and c */
    ngx_str_t                     partner;     /* credentials of it */
    ngx_uint_t                    failed;
} ngx_http_openbank_reg_walk_t;




/* the replay at start: into the zone, or (conf time) into a list */

typedef struct {
    ngx_http_openbank_zone_t     *zone;        /* NULL: into "list" */
    ngx_array_t                  *list;        /* ..._reg_rec_t */
    ngx_rbtree_t                  keys;        /* the list's, by key */
    ngx_rbtree_node_t             sentinel;
    ngx_pool_t                   *pool;
    uint64_t                      seq;         /* the last audit event's */
    ngx_uint_t                    sealed;      /* HMAC secrets */
    ngx_uint_t                    loaded;
    ngx_uint_t                    full;
} ngx_http_openbank_reg_load_t;

typedef struct {
    ngx_str_node_t                sn;
    ngx_uint_t                    index;       /* in the list */
} ngx_http_openbank_reg_key_node_t;


static ngx_int_t ngx_http_openbank_reg_dump(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_reg_apply_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_reg_index(ngx_http_openbank_zone_t *zone,
    ngx_str_t *key, ngx_str_t *value, ngx_pool_t *pool, ngx_str_t *index);
static ngx_int_t ngx_http_openbank_reg_put(ngx_http_openbank_zone_t *zone,
    ngx_str_t *key, ngx_str_t *value, ngx_pool_t *pool);
static ngx_int_t ngx_http_openbank_reg_del(ngx_http_openbank_zone_t *zone,
    ngx_str_t *key, ngx_pool_t *pool);
static ngx_int_t ngx_http_openbank_reg_cascade(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_reg_bump(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_reg_seq(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_reg_replay_put(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_reg_replay_del(void *data,
    u_char *payload, size_t len);
static ngx_http_openbank_reg_key_node_t *ngx_http_openbank_reg_key_find(
    ngx_http_openbank_reg_load_t *ld, ngx_str_t *key);
static ngx_int_t ngx_http_openbank_reg_collect_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_reg_collect_one(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_reg_sealing_key(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf, ngx_uint_t sealed);
static ngx_int_t ngx_http_openbank_reg_unseal(ngx_pool_t *pool,
    ngx_str_t *sealed, ngx_str_t *aad, ngx_str_t *out);
static ngx_http_openbank_reg_view_t *ngx_http_openbank_reg_view(
    ngx_http_request_t *r);
static ngx_http_openbank_reg_view_t *ngx_http_openbank_reg_build(
    ngx_http_openbank_main_conf_t *obmcf, uint64_t generation,
    ngx_log_t *log);
static ngx_int_t ngx_http_openbank_reg_build_partner(
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_openbank_reg_view_t *v,
    ngx_http_openbank_reg_rec_t *rec, ngx_log_t *log);
static ngx_int_t ngx_http_openbank_reg_build_cred(
    ngx_http_openbank_reg_view_t *v, ngx_http_openbank_reg_rec_t *rec,
    time_t now, ngx_log_t *log);
static void ngx_http_openbank_reg_release(void *data);
static void ngx_http_openbank_reg_touch(ngx_http_request_t *r,
    ngx_http_openbank_reg_cred_t *c);
static ngx_int_t ngx_http_openbank_reg_touched(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_http_openbank_reg_partner_t *ngx_http_openbank_reg_find(
    ngx_http_openbank_reg_view_t *v, ngx_str_t *client_id);
static int ngx_libc_cdecl ngx_http_openbank_reg_cmp_name(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_http_openbank_reg_cmp_named(const void *name,
    const void *b);
static int ngx_libc_cdecl ngx_http_openbank_reg_cmp_client(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_http_openbank_reg_cmp_hash(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_http_openbank_reg_cmp_id(const void *a,
    const void *b);
static ngx_int_t ngx_http_openbank_reg_quotas(ngx_pool_t *pool,
    ngx_str_t *text, ngx_array_t *quotas);
static uint64_t ngx_http_openbank_reg_hex(u_char *p, size_t len);


static ngx_http_openbank_journal_t  ngx_http_openbank_reg_j = {
    "registry journal", "registry", NGX_HTTP_OPENBANK_TABLE_REGISTRY,
    NULL, ngx_http_openbank_reg_dump, NULL, "",
    ngx_null_string, ngx_null_string, 0, 0, 0, 0, 0,
    { NULL, NULL }, { NULL, NULL }, 0, { 0 }, { 0 }, NULL, NULL, 0
};

static ngx_str_t  ngx_http_openbank_reg_gen_key = ngx_string("\1g");
static ngx_str_t  ngx_http_openbank_reg_seq_key = ngx_string("\1a");

static u_char                        ngx_http_openbank_reg_seal_key[32];
static ngx_uint_t                    ngx_http_openbank_reg_has_seal;
static ngx_http_openbank_reg_view_t *ngx_http_openbank_reg_current;


/*
 * A used software statement's record whose statement has expired (and
 * so cannot be presented again): left out of the zone at start and of
 * the journal at its compaction.
 */

static ngx_uint_t
ngx_http_openbank_reg_spent(ngx_str_t *value)
{
    int64_t  exp;

    if (value->len != sizeof(int64_t)) {
        return 1;
    }

    ngx_memcpy(&exp, value->data, sizeof(int64_t));

    return exp + NGX_HTTP_OPENBANK_REG_SKEW_MAX < (int64_t) ngx_time();
}


/* the hashed credentials: one of each hash in the whole namespace */

static ngx_uint_t
ngx_http_openbank_reg_hashed(ngx_uint_t type)
{
    return type == NGX_HTTP_OPENBANK_CRED_API_KEY
           || type == NGX_HTTP_OPENBANK_CRED_CLIENT_SECRET
           || type == NGX_HTTP_OPENBANK_CRED_CERTIFICATE;
}


/*
 * At configuration time (nginx -t, a reload, a start): the journal on
 * disk is read, and a static partner whose name, client_id or hashes a
 * registry partner holds is refused, with both names; so is a registry
 * partner whose plan the configuration no longer has.
 */

ngx_int_t
ngx_http_openbank_registry_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    size_t                             skipped;
    ngx_str_t                          name, client_id, pname;
    ngx_uint_t                         i, k, n;
    ngx_array_t                        list;
    ngx_http_openbank_key_t           *key;
    ngx_http_openbank_plan_t          *plan;
    ngx_http_openbank_reg_rec_t       *rec;
    ngx_http_openbank_journal_t        j;
    ngx_http_openbank_partner_t       *partner;
    ngx_http_openbank_journal_pt       handlers[3];
    ngx_http_openbank_reg_load_t       ld;
    ngx_http_openbank_reg_cred_v_t     cv;
    ngx_http_openbank_reg_partner_v_t  pv;

    if (obmcf->state_path.len == 0 || obmcf->shm_zone == NULL
        || ngx_process == NGX_PROCESS_SIGNALLER)
    {
        return NGX_OK;
    }

    j = ngx_http_openbank_reg_j;
    j.ready = 0;

    if (ngx_http_openbank_journal_init(&j, cf->cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&list, cf->temp_pool, 16,
                       sizeof(ngx_http_openbank_reg_rec_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&ld, sizeof(ld));
    ld.list = &list;
    ld.pool = cf->temp_pool;
    ngx_rbtree_init(&ld.keys, &ld.sentinel, ngx_str_rbtree_insert_value);

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_REG_PUT_RECORD] =
                                        ngx_http_openbank_reg_replay_put;
    handlers[NGX_HTTP_OPENBANK_REG_DEL_RECORD] =
                                        ngx_http_openbank_reg_replay_del;

    if (ngx_http_openbank_journal_replay(&j, cf->log, handlers, 3, &ld,
                                         &skipped)
        == NGX_ERROR)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry journal \"%V\" is unreadable",
                           &j.name);
        return NGX_ERROR;
    }

    rec = list.elts;
    partner = obmcf->partners.elts;
    n = 0;

    for (i = 0; i < list.nelts; i++) {
        if (rec[i].key.len == 0) {
            continue;               /* deleted */
        }

        name.data = rec[i].key.data + 1;
        name.len = rec[i].key.len - 1;

        if (rec[i].key.data[0] == 'p'
            && rec[i].value.len >= sizeof(pv))
        {
            n++;
            ngx_memcpy(&pv, rec[i].value.data, sizeof(pv));

            if (rec[i].value.len < sizeof(pv) + pv.plan_len
                                   + pv.client_id_len)
            {
                continue;
            }

            pname.data = rec[i].value.data + sizeof(pv);
            pname.len = pv.plan_len;
            client_id.data = pname.data + pname.len;
            client_id.len = pv.client_id_len;

            for (k = 0; k < obmcf->partners.nelts; k++) {
                if ((partner[k].name.len == name.len
                     && ngx_strncmp(partner[k].name.data, name.data,
                                    name.len) == 0)
                    || (client_id.len
                        && partner[k].client_id.len == client_id.len
                        && ngx_strncmp(partner[k].client_id.data,
                                       client_id.data, client_id.len) == 0))
                {
                    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                                  "openbank_partner \"%V\" in %V:%ui "
                                  "clashes with the registry partner "
                                  "\"%V\" (client_id \"%V\") of \"%V\"",
                                  &partner[k].name, &partner[k].conf_file,
                                  partner[k].conf_line, &name, &client_id,
                                  &j.name);
                    return NGX_ERROR;
                }
            }

            plan = obmcf->plans.elts;

            for (k = 0; k < obmcf->plans.nelts; k++) {
                if (plan[k].name.len == pname.len
                    && ngx_strncmp(plan[k].name.data, pname.data,
                                   pname.len) == 0)
                {
                    break;
                }
            }

            if (k == obmcf->plans.nelts) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "the registry partner \"%V\" of \"%V\" is on "
                              "the plan \"%V\", which the configuration "
                              "has no longer", &name, &j.name, &pname);
                return NGX_ERROR;
            }

            continue;
        }

        if (rec[i].key.data[0] != 'c' || rec[i].value.len < sizeof(cv)) {
            continue;
        }

        ngx_memcpy(&cv, rec[i].value.data, sizeof(cv));

        if (!ngx_http_openbank_reg_hashed(cv.type)) {
            continue;
        }

        pname.data = rec[i].value.data + sizeof(cv);
        pname.len = ngx_min(cv.partner_len, rec[i].value.len - sizeof(cv));

        key = obmcf->api_keys.elts;

        for (k = 0; k < obmcf->api_keys.nelts; k++) {
            if (ngx_memcmp(key[k].hash, cv.hash, sizeof(cv.hash)) == 0) {
                goto clash;
            }
        }

        for (k = 0; k < obmcf->partners.nelts; k++) {
            if ((partner[k].has_client_secret
                 && ngx_memcmp(partner[k].client_secret, cv.hash,
                               sizeof(cv.hash)) == 0)
                || (partner[k].has_certificate
                    && ngx_memcmp(partner[k].certificate, cv.hash,
                                  sizeof(cv.hash)) == 0))
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "openbank_partner \"%V\" in %V:%ui has a "
                              "secret or certificate of the registry "
                              "partner \"%V\" (credential %V) of \"%V\"",
                              &partner[k].name, &partner[k].conf_file,
                              partner[k].conf_line, &pname, &name, &j.name);
                return NGX_ERROR;
            }
        }

        continue;

    clash:

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "openbank_partner \"%V\" has an api_key of the "
                      "registry partner \"%V\" (credential %V) of \"%V\"",
                      &key[k].partner->name, &pname, &name, &j.name);
        return NGX_ERROR;
    }

    if (n && obmcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the registry needs \"openbank_zone\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* at start, once per zone: the journal back into the zone */

ngx_int_t
ngx_http_openbank_registry_init_module(ngx_cycle_t *cycle)
{
    u_char                          hex[16];
    uint64_t                        generation;
    ngx_int_t                       rc;
    ngx_str_t                       v;
    ngx_core_conf_t                *ccf;
    ngx_http_openbank_journal_t    *j;
    ngx_http_openbank_journal_pt    handlers[3];
    ngx_http_openbank_reg_load_t    ld;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL
        || obmcf->state_path.len == 0
        || !ngx_http_openbank_registry_on(obmcf)
        || ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER)
    {
        return NGX_OK;
    }

    j = &ngx_http_openbank_reg_j;

    rc = ngx_http_openbank_journal_begin(j, cycle, "registry");

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ngx_memzero(&ld, sizeof(ld));
    ld.zone = obmcf->shm_zone->data;
    ld.pool = cycle->pool;

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_REG_PUT_RECORD] =
                                        ngx_http_openbank_reg_replay_put;
    handlers[NGX_HTTP_OPENBANK_REG_DEL_RECORD] =
                                        ngx_http_openbank_reg_replay_del;

    rc = ngx_http_openbank_journal_load(j, cycle, &obmcf->shm_zone->shm.name,
                                        "registry", handlers, 3, &ld,
                                        &ld.full);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* a new key only while no sealed secret needs the old one */

    if (ngx_http_openbank_reg_sealing_key(cycle, obmcf, ld.sealed)
        != NGX_OK)
    {
        return NGX_ERROR;
    }


    ngx_sprintf(hex, "%016uxL", ld.seq);
    v.data = hex;
    v.len = 16;

    if (ngx_http_openbank_store_set(ld.zone, NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                    &ngx_http_openbank_reg_seq_key,
                                    v.data, v.len, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the workers make their views from the records restored */

    generation = 1;

    if (ngx_http_openbank_store_set(ld.zone, NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                    &ngx_http_openbank_reg_gen_key,
                                    &generation, sizeof(generation), 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ld.loaded) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "openbank: %ui registry records restored from \"%V\"",
                      ld.loaded, &j->name);
    }

    (void) ngx_http_openbank_journal_compact(j, ccf->user, cycle->log);

    ngx_http_openbank_journal_reset(j);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_reg_replay_put(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_reg_load_t *ld = data;

    uint64_t                           seq;
    ngx_str_t                          key, value;
    ngx_http_openbank_reg_key_node_t  *kn;
    ngx_http_openbank_reg_rec_t       *rec;
    ngx_http_openbank_reg_cred_v_t     cv;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;
    value.data = key.data + key.len;
    value.len = len - sizeof(head) - key.len;

    if (key.len < 2
        || (key.data[0] != 'p' && key.data[0] != 'c' && key.data[0] != 'a'
            && key.data[0] != 's')
        || (key.data[0] == 's' && ngx_http_openbank_reg_spent(&value)))
    {
        return NGX_OK;
    }

    if (key.data[0] == 'c' && value.len >= sizeof(cv)) {
        ngx_memcpy(&cv, value.data, sizeof(cv));
        ld->sealed += (cv.type == NGX_HTTP_OPENBANK_CRED_HMAC_SECRET);
    }

    if (key.data[0] == 'a' && key.len == 17) {
        seq = ngx_http_openbank_reg_hex(key.data + 1, 16);

        if (seq > ld->seq) {
            ld->seq = seq;
        }
    }

    if (ld->zone) {
        if (ngx_http_openbank_reg_put(ld->zone, &key, &value, ld->pool)
            != NGX_OK)
        {
            ld->full++;
            return NGX_OK;
        }

        ld->loaded++;
        return NGX_OK;
    }

    if (key.data[0] == 'a') {
        return NGX_OK;
    }

    /* at conf time: the last of each key */

    kn = ngx_http_openbank_reg_key_find(ld, &key);

    if (kn == NULL) {
        kn = ngx_palloc(ld->pool, sizeof(ngx_http_openbank_reg_key_node_t));
        rec = ngx_array_push(ld->list);

        if (kn == NULL || rec == NULL) {
            return NGX_ERROR;
        }

        kn->sn.str.data = ngx_pstrdup(ld->pool, &key);
        if (kn->sn.str.data == NULL) {
            return NGX_ERROR;
        }

        kn->sn.str.len = key.len;
        kn->sn.node.key = ngx_crc32_short(key.data, key.len);
        kn->index = ld->list->nelts - 1;

        ngx_rbtree_insert(&ld->keys, &kn->sn.node);

    } else {
        rec = (ngx_http_openbank_reg_rec_t *) ld->list->elts + kn->index;
    }

    rec->key.data = ngx_pstrdup(ld->pool, &key);
    rec->value.data = ngx_pstrdup(ld->pool, &value);

    if (rec->key.data == NULL || (value.len && rec->value.data == NULL)) {
        return NGX_ERROR;
    }

    rec->key.len = key.len;
    rec->value.len = value.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_reg_replay_del(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_reg_load_t *ld = data;

    ngx_str_t                          key;
    ngx_http_openbank_reg_key_node_t  *kn;
    ngx_http_openbank_reg_rec_t       *rec;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;

    if (ld->zone) {
        (void) ngx_http_openbank_reg_del(ld->zone, &key, ld->pool);
        return NGX_OK;
    }

    kn = ngx_http_openbank_reg_key_find(ld, &key);

    if (kn) {
        rec = (ngx_http_openbank_reg_rec_t *) ld->list->elts + kn->index;
        rec->key.len = 0;
    }

    return NGX_OK;
}


static ngx_http_openbank_reg_key_node_t *
ngx_http_openbank_reg_key_find(ngx_http_openbank_reg_load_t *ld,
    ngx_str_t *key)
{
    return (ngx_http_openbank_reg_key_node_t *)
           ngx_str_rbtree_lookup(&ld->keys, key,
                                 ngx_crc32_short(key->data, key->len));
}


/*
 * The index record a partner or credential record makes: "i<client id>"
 * or "h<type><hash>"; NGX_DECLINED: none.
 */

static ngx_int_t
ngx_http_openbank_reg_index(ngx_http_openbank_zone_t *zone, ngx_str_t *key,
    ngx_str_t *value, ngx_pool_t *pool, ngx_str_t *index)
{
    ngx_http_openbank_reg_cred_v_t     cv;
    ngx_http_openbank_reg_partner_v_t  pv;

    if (key->data[0] == 'p' && value->len >= sizeof(pv)) {
        ngx_memcpy(&pv, value->data, sizeof(pv));

        if (pv.client_id_len == 0
            || value->len < sizeof(pv) + pv.plan_len + pv.client_id_len)
        {
            return NGX_DECLINED;
        }

        index->len = 1 + pv.client_id_len;
        index->data = ngx_pnalloc(pool, index->len);
        if (index->data == NULL) {
            return NGX_ERROR;
        }

        index->data[0] = 'i';
        ngx_memcpy(index->data + 1, value->data + sizeof(pv) + pv.plan_len,
                   pv.client_id_len);
        return NGX_OK;
    }

    if (key->data[0] == 'c' && value->len >= sizeof(cv)) {
        ngx_memcpy(&cv, value->data, sizeof(cv));

        if (!ngx_http_openbank_reg_hashed(cv.type)) {
            return NGX_DECLINED;
        }

        index->len = 2 + NGX_HTTP_OPENBANK_HASH_LEN;
        index->data = ngx_pnalloc(pool, index->len);
        if (index->data == NULL) {
            return NGX_ERROR;
        }

        index->data[0] = 'h';
        index->data[1] = (u_char) ('0' + cv.type);
        ngx_memcpy(index->data + 2, cv.hash, NGX_HTTP_OPENBANK_HASH_LEN);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* a record and its index into the zone: NGX_OK or NGX_ERROR (full) */

static ngx_int_t
ngx_http_openbank_reg_put(ngx_http_openbank_zone_t *zone, ngx_str_t *key,
    ngx_str_t *value, ngx_pool_t *pool)
{
    ngx_str_t  index;

    if (ngx_http_openbank_store_set(zone, NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                    key, value->data, value->len, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_reg_index(zone, key, value, pool, &index) != NGX_OK)
    {
        return NGX_OK;
    }

    if (ngx_http_openbank_store_set(zone, NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                    &index, key->data + 1, key->len - 1, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_reg_del(ngx_http_openbank_zone_t *zone, ngx_str_t *key,
    ngx_pool_t *pool)
{
    ssize_t        n;
    ngx_str_t      value, index;
    static u_char  buf[NGX_HTTP_OPENBANK_REG_VALUE_MAX];

    n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                    key, buf, NGX_HTTP_OPENBANK_REG_VALUE_MAX,
                                    NULL);
    if (n < 0) {
        return NGX_DECLINED;
    }

    value.data = buf;
    value.len = ngx_min((size_t) n, NGX_HTTP_OPENBANK_REG_VALUE_MAX);

    if (ngx_http_openbank_reg_index(zone, key, &value, pool, &index)
        == NGX_OK)
    {
        (void) ngx_http_openbank_store_delete(zone,
                                              NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                              &index);
    }

    (void) ngx_http_openbank_store_delete(zone,
                                          NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                          key);
    return NGX_OK;
}


/* for a compaction: a record for each partner, credential, event */

static ngx_int_t
ngx_http_openbank_reg_dump(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_journal_dump_t  *dp = data;

    u_char     c;
    ngx_str_t  v;

    c = sv->key.len ? sv->key.data[0] : 0;

    if (c == 's') {
        v.data = sv->value;
        v.len = sv->len;

        if (ngx_http_openbank_reg_spent(&v)) {
            return NGX_HTTP_OPENBANK_STORE_KEEP;
        }

    } else if (c != 'p' && c != 'c' && c != 'a') {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_http_openbank_journal_dump_record(dp,
                                          NGX_HTTP_OPENBANK_REG_PUT_RECORD,
                                          0, &sv->key, sv->value, sv->len);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * A change: its checks and its records in the zone under one lock, then
 * to the journal.  NGX_AGAIN: "done" answers once it is durable (the
 * caller holds the request); NGX_DECLINED: refused, ch->result says why;
 * NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_registry_change(ngx_http_request_t *r,
    ngx_http_openbank_reg_change_t *ch, ngx_http_openbank_reg_done_pt done)
{
    u_char                            *p;
    size_t                             len;
    ngx_str_t                         *k;
    ngx_uint_t                         i;
    ngx_http_openbank_journal_t       *j;
    ngx_http_openbank_reg_op_t        *op;
    ngx_http_openbank_reg_apply_t      ap;
    ngx_http_openbank_main_conf_t     *obmcf;
    ngx_http_openbank_journal_wait_t  *w;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    j = &ngx_http_openbank_reg_j;

    if (ngx_http_openbank_journal_init(j, (ngx_cycle_t *) ngx_cycle)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_journal_open_lock(j, r->connection->log) != NGX_OK)
    {
        ch->result = NGX_HTTP_OPENBANK_REG_ERROR;
        return NGX_DECLINED;
    }

    ngx_memzero(&ap, sizeof(ap));
    ap.ch = ch;
    ap.pool = r->pool;

    if (ngx_array_init(&ap.cascade, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ch->result = NGX_HTTP_OPENBANK_REG_OK;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_reg_apply_atomic,
                                       &ap)
        != NGX_OK
        || ch->result != NGX_HTTP_OPENBANK_REG_OK)
    {
        if (ch->result == NGX_HTTP_OPENBANK_REG_OK) {
            ch->result = NGX_HTTP_OPENBANK_REG_ERROR;
        }

        if (ch->result == NGX_HTTP_OPENBANK_REG_FULL) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "openbank: zone \"%V\" is full: a registry change "
                          "is refused", &obmcf->shm_zone->shm.name);
        }

        return NGX_DECLINED;
    }

    /* the records of the change, in one entry of the journal */

    len = 0;
    op = ch->ops;

    for (i = 0; i < ch->nops; i++) {
        len += NGX_HTTP_OPENBANK_JOURNAL_FRAME
               + sizeof(ngx_http_openbank_journal_head_t) + op[i].key.len
               + op[i].value.len;
    }

    k = ap.cascade.elts;

    for (i = 0; i < ap.cascade.nelts; i++) {
        len += NGX_HTTP_OPENBANK_JOURNAL_FRAME
               + sizeof(ngx_http_openbank_journal_head_t) + k[i].len;
    }

    len += NGX_HTTP_OPENBANK_JOURNAL_FRAME
           + sizeof(ngx_http_openbank_journal_head_t) + ap.audit_key.len
           + ap.audit_value.len;

    w = ngx_http_openbank_journal_wait(r, len, done);
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->lost = (u_char *) "a registry change is not durable yet: it is in "
                         "the zone, and written with the next write";
    p = w->entry.record;

    for (i = 0; i < ch->nops; i++) {
        switch (op[i].op) {

        case NGX_HTTP_OPENBANK_REG_PUT_NEW:
        case NGX_HTTP_OPENBANK_REG_PUT:
            p = ngx_http_openbank_journal_record(p,
                                          NGX_HTTP_OPENBANK_REG_PUT_RECORD, 0,
                                          &op[i].key, op[i].value.data,
                                          op[i].value.len);
            break;

        case NGX_HTTP_OPENBANK_REG_DEL:
        case NGX_HTTP_OPENBANK_REG_DEL_ALL:
            p = ngx_http_openbank_journal_record(p,
                                          NGX_HTTP_OPENBANK_REG_DEL_RECORD, 0,
                                          &op[i].key, NULL, 0);
            break;

        default: /* AUDIT */
            break;
        }
    }

    for (i = 0; i < ap.cascade.nelts; i++) {
        p = ngx_http_openbank_journal_record(p,
                                             NGX_HTTP_OPENBANK_REG_DEL_RECORD,
                                             0, &k[i], NULL, 0);
    }

    if (ap.audit_key.len) {
        p = ngx_http_openbank_journal_record(p,
                                             NGX_HTTP_OPENBANK_REG_PUT_RECORD,
                                             0, &ap.audit_key,
                                             ap.audit_value.data,
                                             ap.audit_value.len);
    }

    if (ap.sync_seq) {
        ngx_http_openbank_sync_queue(obmcf, ap.sync_seq,
                                     NGX_HTTP_OPENBANK_SYNC_REGISTRY,
                                     w->entry.record, p - w->entry.record,
                                     r->connection->log);
    }

    ngx_http_openbank_journal_submit_wait(j, w, p);

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_openbank_reg_apply_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_reg_apply_t *ap = data;

    u_char                          *p, hex[16];
    ngx_str_t                        index, *k, seq;
    ngx_uint_t                       i, j;
    ngx_http_openbank_reg_op_t      *op;
    ngx_http_openbank_reg_walk_t     w;
    ngx_http_openbank_reg_change_t  *ch;

    ch = ap->ch;
    op = ch->ops;

    /* the checks first: nothing changes unless all of them hold */

    for (i = 0; i < ch->nops; i++) {
        if (op[i].op == NGX_HTTP_OPENBANK_REG_AUDIT) {
            continue;
        }

        if (op[i].op != NGX_HTTP_OPENBANK_REG_PUT_NEW) {
            if (ngx_http_openbank_store_get(zone,
                                            NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                            &op[i].key, NULL, 0, NULL)
                == NGX_DECLINED)
            {
                ch->result = NGX_HTTP_OPENBANK_REG_MISSING;
                return NGX_OK;
            }

            continue;
        }

        if (ngx_http_openbank_store_get(zone,
                                        NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                        &op[i].key, NULL, 0, NULL)
            != NGX_DECLINED)
        {
            ch->result = NGX_HTTP_OPENBANK_REG_CONFLICT;
            ch->conflict = op[i].key;
            return NGX_OK;
        }

        if (ngx_http_openbank_reg_index(zone, &op[i].key, &op[i].value,
                                        ap->pool, &index)
            == NGX_OK
            && ngx_http_openbank_store_get(zone,
                                           NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                           &index, NULL, 0, NULL)
               != NGX_DECLINED)
        {
            ch->result = NGX_HTTP_OPENBANK_REG_CONFLICT;
            ch->conflict = index;
            return NGX_OK;
        }
    }

    for (i = 0; i < ch->nops; i++) {
        switch (op[i].op) {

        case NGX_HTTP_OPENBANK_REG_PUT_NEW:
        case NGX_HTTP_OPENBANK_REG_PUT:
            if (ngx_http_openbank_reg_put(zone, &op[i].key, &op[i].value,
                                          ap->pool)
                != NGX_OK)
            {
                ch->result = NGX_HTTP_OPENBANK_REG_FULL;
                return NGX_OK;
            }

            break;

        case NGX_HTTP_OPENBANK_REG_DEL_ALL:
            ngx_memzero(&w, sizeof(w));
            w.pool = ap->pool;
            w.out = &ap->cascade;
            w.partner.data = op[i].key.data + 1;
            w.partner.len = op[i].key.len - 1;

            (void) ngx_http_openbank_store_walk(zone,
                                          NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                          ngx_http_openbank_reg_cascade, &w);
            if (w.failed) {
                ch->result = NGX_HTTP_OPENBANK_REG_ERROR;
                return NGX_OK;
            }

            k = ap->cascade.elts;

            for (j = 0; j < ap->cascade.nelts; j++) {
                (void) ngx_http_openbank_reg_del(zone, &k[j], ap->pool);
            }

            (void) ngx_http_openbank_reg_del(zone, &op[i].key, ap->pool);
            break;

        case NGX_HTTP_OPENBANK_REG_DEL:
            (void) ngx_http_openbank_reg_del(zone, &op[i].key, ap->pool);
            break;

        default: /* AUDIT: "a<seq>", its id first in its JSON */

            seq.data = hex;
            seq.len = 0;

            if (ngx_http_openbank_store_update(zone,
                                          NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                          &ngx_http_openbank_reg_seq_key, 16,
                                          0, ngx_http_openbank_reg_seq, &seq)
                != NGX_HTTP_OPENBANK_STORE_KEEP)
            {
                ch->result = NGX_HTTP_OPENBANK_REG_FULL;
                return NGX_OK;
            }

            ap->audit_key.len = 17;
            ap->audit_key.data = ngx_pnalloc(ap->pool, 17);
            ap->audit_value.data = ngx_pnalloc(ap->pool,
                                               op[i].value.len + 32);
            if (ap->audit_key.data == NULL || ap->audit_value.data == NULL) {
                ch->result = NGX_HTTP_OPENBANK_REG_ERROR;
                return NGX_OK;
            }

            ap->audit_key.data[0] = 'a';
            ngx_memcpy(ap->audit_key.data + 1, hex, 16);

            p = ngx_sprintf(ap->audit_value.data, "{\"id\":\"evt_%*s\",",
                            (size_t) 16, hex);
            p = ngx_cpymem(p, op[i].value.data, op[i].value.len);
            ap->audit_value.len = p - ap->audit_value.data;

            if (ngx_http_openbank_store_set(zone,
                                            NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                            &ap->audit_key,
                                            ap->audit_value.data,
                                            ap->audit_value.len, 0)
                != NGX_OK)
            {
                ch->result = NGX_HTTP_OPENBANK_REG_FULL;
                return NGX_OK;
            }

            break;
        }
    }

    if (ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                       &ngx_http_openbank_reg_gen_key,
                                       sizeof(uint64_t), 0,
                                       ngx_http_openbank_reg_bump,
                                       &ap->generation)
        != NGX_HTTP_OPENBANK_STORE_KEEP)
    {
        ch->result = NGX_HTTP_OPENBANK_REG_FULL;
        return NGX_OK;
    }

    if (ch->result == NGX_HTTP_OPENBANK_REG_OK) {
        ap->sync_seq = ngx_http_openbank_sync_reserve(zone);
    }

    return NGX_OK;
}


/* the credentials of a partner that goes */

static ngx_int_t
ngx_http_openbank_reg_cascade(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_reg_walk_t *w = data;

    ngx_str_t                        *k;
    ngx_http_openbank_reg_cred_v_t    cv;

    if (sv->key.len < 2 || sv->key.data[0] != 'c' || sv->len < sizeof(cv)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&cv, sv->value, sizeof(cv));

    if (cv.partner_len != w->partner.len
        || sv->len < sizeof(cv) + cv.partner_len
        || ngx_memcmp(sv->value + sizeof(cv), w->partner.data,
                      w->partner.len) != 0)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    k = ngx_array_push(w->out);
    if (k == NULL) {
        w->failed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    k->data = ngx_pnalloc(w->pool, sv->key.len);
    if (k->data == NULL) {
        w->failed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    ngx_memcpy(k->data, sv->key.data, sv->key.len);
    k->len = sv->key.len;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_reg_bump(ngx_http_openbank_store_value_t *sv, void *data)
{
    uint64_t  *generation = data;
    uint64_t   g;

    ngx_memcpy(&g, sv->value, sizeof(g));
    g++;
    ngx_memcpy(sv->value, &g, sizeof(g));
    *generation = g;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* the audit's sequence: 16 hex digits, the next one out */

static ngx_int_t
ngx_http_openbank_reg_seq(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_str_t  *out = data;
    uint64_t    seq;

    seq = sv->is_new ? 0 : ngx_http_openbank_reg_hex(sv->value, 16);
    seq++;

    ngx_sprintf(sv->value, "%016uxL", seq);
    ngx_memcpy(out->data, sv->value, 16);
    out->len = 16;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The records whose key begins with "prefix" ('p', 'c', 'a'), copied
 * into the request's pool, under one lock.
 */

ngx_int_t
ngx_http_openbank_registry_collect(ngx_http_request_t *r, u_char prefix,
    ngx_array_t *out)
{
    ngx_http_openbank_reg_walk_t    w;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (ngx_array_init(out, r->pool, 16, sizeof(ngx_http_openbank_reg_rec_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&w, sizeof(w));
    w.pool = r->pool;
    w.out = out;
    w.prefix = prefix;

    (void) ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                          ngx_http_openbank_reg_collect_atomic,
                                          &w);

    return w.failed ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_http_openbank_reg_collect_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    return ngx_http_openbank_store_walk(zone,
                                        NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                        ngx_http_openbank_reg_collect_one,
                                        data);
}


static ngx_int_t
ngx_http_openbank_reg_collect_one(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_reg_walk_t *w = data;

    ngx_http_openbank_reg_rec_t  *rec;

    if (sv->key.len < 2
        || (w->prefix && sv->key.data[0] != w->prefix)
        || (!w->prefix && sv->key.data[0] != 'p' && sv->key.data[0] != 'c'))
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    rec = ngx_array_push(w->out);
    if (rec == NULL) {
        w->failed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    rec->key.data = ngx_pnalloc(w->pool, sv->key.len + sv->len + 1);
    if (rec->key.data == NULL) {
        w->failed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    rec->key.len = sv->key.len;
    ngx_memcpy(rec->key.data, sv->key.data, sv->key.len);

    rec->value.data = rec->key.data + sv->key.len;
    rec->value.len = sv->len;
    ngx_memcpy(rec->value.data, sv->value, sv->len);
    rec->value.data[sv->len] = '\0';

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The registry's sealing key: 32 random bytes in "registry.key" under
 * openbank_state, made (0600, owned by the workers' user) at the first
 * start, read by the master at each start and reload.
 */

static ngx_int_t
ngx_http_openbank_reg_sealing_key(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf, ngx_uint_t sealed)
{
    ngx_int_t         rc;
    ngx_str_t         name, text;
    ngx_core_conf_t  *ccf;
    u_char            key[32];

    name.len = obmcf->state_path.len
               + sizeof("/" NGX_HTTP_OPENBANK_REG_KEY_FILE) - 1;
    name.data = ngx_pnalloc(cycle->pool, name.len + 1);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V/" NGX_HTTP_OPENBANK_REG_KEY_FILE "%Z",
                &obmcf->state_path);

    rc = ngx_http_openbank_state_read(cycle->log, NGX_LOG_EMERG, cycle->pool,
                                      &name, 64, &text);

    if (rc == NGX_OK) {
        if (text.len != sizeof(key)) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "openbank: \"%V\" is not a 32-byte key: the "
                          "sealed HMAC secrets cannot be opened", &name);
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_http_openbank_reg_seal_key, text.data, sizeof(key));
        ngx_explicit_memzero(text.data, text.len);
        ngx_http_openbank_reg_has_seal = 1;
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (sealed) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "openbank: \"%V\" is missing, and the registry "
                      "journal holds %ui HMAC secrets sealed with it: "
                      "restore it (or delete those credentials' records "
                      "by removing the journal)", &name, sealed);
        return NGX_ERROR;
    }

    if (RAND_bytes(key, sizeof(key)) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ngx_http_openbank_state_write_as(cycle->log, &name, key, sizeof(key),
                                         ccf->user)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_http_openbank_reg_seal_key, key, sizeof(key));
    ngx_explicit_memzero(key, sizeof(key));
    ngx_http_openbank_reg_has_seal = 1;

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "openbank: the registry's sealing key \"%V\" is made",
                  &name);

    return NGX_OK;
}


/*
 * Seals an HMAC secret: "out" gets the nonce, the tag and the sealed
 * bytes (NGX_HTTP_OPENBANK_SEAL_IV + NGX_HTTP_OPENBANK_SEAL_TAG + len);
 * the credential's id is the associated data.
 */

ngx_int_t
ngx_http_openbank_registry_seal(u_char *out, u_char *secret, size_t len,
    ngx_str_t *aad)
{
    int              n;
    ngx_int_t        rc;
    EVP_CIPHER_CTX  *c;

    if (!ngx_http_openbank_reg_has_seal) {
        return NGX_DECLINED;
    }

    if (RAND_bytes(out, NGX_HTTP_OPENBANK_SEAL_IV) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    c = EVP_CIPHER_CTX_new();
    if (c == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL,
                           ngx_http_openbank_reg_seal_key, out) == 1
        && EVP_EncryptUpdate(c, NULL, &n, aad->data, (int) aad->len) == 1
        && EVP_EncryptUpdate(c, out + NGX_HTTP_OPENBANK_SEAL_IV
                                + NGX_HTTP_OPENBANK_SEAL_TAG, &n,
                             secret, (int) len) == 1
        && EVP_EncryptFinal_ex(c, out + NGX_HTTP_OPENBANK_SEAL_IV
                                  + NGX_HTTP_OPENBANK_SEAL_TAG + n, &n) == 1
        && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
                               NGX_HTTP_OPENBANK_SEAL_TAG,
                               out + NGX_HTTP_OPENBANK_SEAL_IV) == 1)
    {
        rc = NGX_OK;
    }

    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();

    return rc;
}


static ngx_int_t
ngx_http_openbank_reg_unseal(ngx_pool_t *pool, ngx_str_t *sealed,
    ngx_str_t *aad, ngx_str_t *out)
{
    int              n;
    size_t           len;
    ngx_int_t        rc;
    EVP_CIPHER_CTX  *c;

    if (!ngx_http_openbank_reg_has_seal
        || sealed->len <= NGX_HTTP_OPENBANK_SEAL_IV
                          + NGX_HTTP_OPENBANK_SEAL_TAG)
    {
        return NGX_DECLINED;
    }

    len = sealed->len - NGX_HTTP_OPENBANK_SEAL_IV - NGX_HTTP_OPENBANK_SEAL_TAG;

    out->data = ngx_pnalloc(pool, len + 16);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    c = EVP_CIPHER_CTX_new();
    if (c == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;

    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL,
                           ngx_http_openbank_reg_seal_key, sealed->data) == 1
        && EVP_DecryptUpdate(c, NULL, &n, aad->data, (int) aad->len) == 1
        && EVP_DecryptUpdate(c, out->data, &n,
                             sealed->data + NGX_HTTP_OPENBANK_SEAL_IV
                             + NGX_HTTP_OPENBANK_SEAL_TAG, (int) len) == 1
        && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG,
                               NGX_HTTP_OPENBANK_SEAL_TAG,
                               sealed->data + NGX_HTTP_OPENBANK_SEAL_IV) == 1
        && EVP_DecryptFinal_ex(c, out->data + n, &n) == 1)
    {
        out->len = len;
        rc = NGX_OK;
    }

    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();

    return rc;
}


/* opens what ngx_http_openbank_registry_seal() sealed */

ngx_int_t
ngx_http_openbank_registry_open(ngx_pool_t *pool, ngx_str_t *sealed,
    ngx_str_t *aad, ngx_str_t *out)
{
    return ngx_http_openbank_reg_unseal(pool, sealed, aad, out);
}


/*
 * Whether a static partner holds the name or the client id: NGX_OK,
 * free; NGX_DECLINED, taken.
 */

ngx_int_t
ngx_http_openbank_registry_taken(ngx_http_openbank_main_conf_t *obmcf,
    ngx_str_t *name, ngx_str_t *client_id)
{
    ngx_uint_t                    i;
    ngx_http_openbank_partner_t  *partner;

    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (name
            && partner[i].name.len == name->len
            && ngx_strncmp(partner[i].name.data, name->data, name->len) == 0)
        {
            return NGX_DECLINED;
        }

        if (client_id && client_id->len
            && partner[i].client_id.len == client_id->len
            && ngx_strncmp(partner[i].client_id.data, client_id->data,
                           client_id->len) == 0)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* this worker's view of the registry, made again when it moved */

static ngx_http_openbank_reg_view_t *
ngx_http_openbank_reg_view(ngx_http_request_t *r)
{
    ssize_t                          n;
    uint64_t                         generation;
    ngx_pool_cleanup_t              *cln;
    ngx_http_openbank_reg_view_t    *v;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (!ngx_http_openbank_registry_on(obmcf) || obmcf->shm_zone == NULL) {
        return NULL;
    }

    generation = 0;

    n = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                    &ngx_http_openbank_reg_gen_key,
                                    &generation, sizeof(generation), NULL);
    if (n != (ssize_t) sizeof(generation)) {
        return NULL;                /* nothing registered yet */
    }

    v = ngx_http_openbank_reg_current;

    if (v == NULL || v->generation != generation
        || (v->expires && v->expires <= ngx_time()))
    {
        v = ngx_http_openbank_reg_build(obmcf, generation,
                                        r->connection->log);
        if (v == NULL) {
            return NULL;
        }

        if (ngx_http_openbank_reg_current) {
            ngx_http_openbank_reg_current->stale = 1;

            if (ngx_http_openbank_reg_current->refs == 0) {
                ngx_destroy_pool(ngx_http_openbank_reg_current->pool);
            }
        }

        ngx_http_openbank_reg_current = v;
    }

    /* the request holds the view until it ends */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_openbank_reg_release;
    cln->data = v;
    v->refs++;

    return v;
}


static void
ngx_http_openbank_reg_release(void *data)
{
    ngx_http_openbank_reg_view_t *v = data;

    if (--v->refs == 0 && v->stale) {
        ngx_destroy_pool(v->pool);
    }
}


static ngx_http_openbank_reg_view_t *
ngx_http_openbank_reg_build(ngx_http_openbank_main_conf_t *obmcf,
    uint64_t generation, ngx_log_t *log)
{
    time_t                         now;
    ngx_uint_t                     i;
    ngx_pool_t                    *pool;
    ngx_array_t                    recs;
    ngx_http_openbank_reg_rec_t   *rec;
    ngx_http_openbank_reg_walk_t   w;
    ngx_http_openbank_reg_view_t  *v;

    /*
     * the view outlives the request that builds it: its pool logs to the
     * cycle's log, not to the connection's, which is freed with it
     */

    pool = ngx_create_pool(16384, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    v = ngx_pcalloc(pool, sizeof(ngx_http_openbank_reg_view_t));
    if (v == NULL
        || ngx_array_init(&recs, pool, 64,
                          sizeof(ngx_http_openbank_reg_rec_t)) != NGX_OK
        || ngx_array_init(&v->partners, pool, 16, sizeof(void *)) != NGX_OK
        || ngx_array_init(&v->keys, pool, 16, sizeof(void *)) != NGX_OK
        || ngx_array_init(&v->creds, pool, 16, sizeof(void *)) != NGX_OK)
    {
        goto failed;
    }

    v->pool = pool;
    v->generation = generation;

    ngx_memzero(&w, sizeof(w));
    w.pool = pool;
    w.out = &recs;

    (void) ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                          ngx_http_openbank_reg_collect_atomic,
                                          &w);
    if (w.failed) {
        goto failed;
    }

    rec = recs.elts;

    for (i = 0; i < recs.nelts; i++) {
        if (rec[i].key.data[0] == 'p'
            && ngx_http_openbank_reg_build_partner(obmcf, v, &rec[i], log)
               != NGX_OK)
        {
            goto failed;
        }
    }

    /* by name while the credentials find their partners, then by client */

    ngx_qsort(v->partners.elts, v->partners.nelts, sizeof(void *),
              ngx_http_openbank_reg_cmp_name);

    now = ngx_time();

    for (i = 0; i < recs.nelts; i++) {
        if (rec[i].key.data[0] == 'c'
            && ngx_http_openbank_reg_build_cred(v, &rec[i], now, log)
               != NGX_OK)
        {
            goto failed;
        }
    }

    ngx_qsort(v->partners.elts, v->partners.nelts, sizeof(void *),
              ngx_http_openbank_reg_cmp_client);

    ngx_qsort(v->keys.elts, v->keys.nelts, sizeof(void *),
              ngx_http_openbank_reg_cmp_hash);
    ngx_qsort(v->creds.elts, v->creds.nelts, sizeof(void *),
              ngx_http_openbank_reg_cmp_id);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "openbank: registry view %uL: %ui partners, %ui "
                   "credentials", generation, v->partners.nelts,
                   v->creds.nelts);

    return v;

failed:

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "openbank: the registry cannot be read into this worker");
    ngx_destroy_pool(pool);

    return NULL;
}


static ngx_int_t
ngx_http_openbank_reg_build_partner(ngx_http_openbank_main_conf_t *obmcf,
    ngx_http_openbank_reg_view_t *v, ngx_http_openbank_reg_rec_t *rec,
    ngx_log_t *log)
{
    u_char                             *p, *q, *last;
    ngx_str_t                           plan, scopes, quotas, *s;
    ngx_uint_t                          k;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_openbank_plan_t           *pl;
    ngx_http_openbank_reg_partner_t    *rp, **slot;
    ngx_http_openbank_reg_partner_v_t   pv;

    if (rec->value.len < sizeof(pv)) {
        return NGX_OK;
    }

    ngx_memcpy(&pv, rec->value.data, sizeof(pv));

    if (rec->value.len < sizeof(pv) + pv.plan_len + pv.client_id_len
                         + pv.scopes_len + pv.quotas_len)
    {
        return NGX_OK;
    }

    rp = ngx_pcalloc(v->pool, sizeof(ngx_http_openbank_reg_partner_t));
    if (rp == NULL) {
        return NGX_ERROR;
    }

    rp->partner.name.data = rec->key.data + 1;
    rp->partner.name.len = rec->key.len - 1;
    rp->partner.registry = 1;
    rp->partner.suspended = (pv.status == NGX_HTTP_OPENBANK_REG_SUSPENDED);
    rp->partner.index = NGX_CONF_UNSET_UINT;

    p = rec->value.data + sizeof(pv);
    plan.data = p;
    plan.len = pv.plan_len;
    p += pv.plan_len;
    rp->partner.client_id.data = p;
    rp->partner.client_id.len = pv.client_id_len;
    p += pv.client_id_len;
    scopes.data = p;
    scopes.len = pv.scopes_len;
    p += pv.scopes_len;
    quotas.data = p;
    quotas.len = pv.quotas_len;

    pl = obmcf->plans.elts;

    for (k = 0; k < obmcf->plans.nelts; k++) {
        if (pl[k].name.len == plan.len
            && ngx_strncmp(pl[k].name.data, plan.data, plan.len) == 0)
        {
            rp->partner.plan = &pl[k];
            break;
        }
    }

    if (rp->partner.plan == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "openbank: the registry partner \"%V\" is on an "
                      "unknown plan \"%V\": it is left out",
                      &rp->partner.name, &plan);
        return NGX_OK;
    }

    rp->partner.plan_name = plan;

    cln = ngx_pool_cleanup_add(v->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    /* the keys a partner's JWKS took over from its credentials' */

    cln->handler = ngx_http_openbank_jwks_free;
    cln->data = &rp->jwks;

    if (ngx_array_init(&rp->partner.scopes, v->pool, 4, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&rp->creds, v->pool, 2, sizeof(void *)) != NGX_OK
        || ngx_array_init(&rp->jwk_creds, v->pool, 2, sizeof(uint64_t))
           != NGX_OK
        || ngx_array_init(&rp->jwks.keys, v->pool, 2,
                          sizeof(ngx_http_openbank_jwk_t)) != NGX_OK
        || ngx_http_openbank_reg_quotas(v->pool, &quotas,
                                        &rp->partner.quotas) != NGX_OK)
    {
        return NGX_ERROR;
    }

    last = scopes.data + scopes.len;

    for (p = scopes.data; p < last; p = q + 1) {
        q = ngx_strlchr(p, last, ' ');
        if (q == NULL) {
            q = last;
        }

        if (q == p) {
            continue;
        }

        s = ngx_array_push(&rp->partner.scopes);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->data = p;
        s->len = q - p;
    }

    slot = ngx_array_push(&v->partners);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    *slot = rp;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_reg_build_cred(ngx_http_openbank_reg_view_t *v,
    ngx_http_openbank_reg_rec_t *rec, time_t now, ngx_log_t *log)
{
    u_char                            *p, err[256];
    uint64_t                          *id;
    ngx_str_t                          pname, sealed, aad, text, secret;
    ngx_uint_t                         i;
    ngx_http_openbank_jwk_t           *jwk, *dst;
    ngx_http_openbank_jwks_t          *jwks;
    ngx_http_openbank_reg_cred_t      *c, **slot;
    ngx_http_openbank_reg_partner_t   *rp, **pp;
    ngx_http_openbank_reg_cred_v_t     cv;

    if (rec->value.len < sizeof(cv) || rec->key.len != 17) {
        return NGX_OK;
    }

    ngx_memcpy(&cv, rec->value.data, sizeof(cv));

    if (rec->value.len < sizeof(cv) + cv.partner_len + cv.hint_len
                         + cv.data_len
        || (cv.expires && cv.expires <= now))
    {
        return NGX_OK;
    }

    pname.data = rec->value.data + sizeof(cv);
    pname.len = cv.partner_len;

    pp = bsearch(&pname, v->partners.elts, v->partners.nelts,
                 sizeof(void *), ngx_http_openbank_reg_cmp_named);
    rp = pp ? *pp : NULL;

    if (rp == NULL) {
        return NGX_OK;
    }

    c = ngx_pcalloc(v->pool, sizeof(ngx_http_openbank_reg_cred_t));
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->id = ngx_http_openbank_reg_hex(rec->key.data + 1, 16);
    c->type = cv.type;
    c->partner = rp;
    ngx_memcpy(c->hash, cv.hash, sizeof(c->hash));

    p = pname.data + pname.len + cv.hint_len;
    text.data = p;
    text.len = cv.data_len;

    switch (cv.type) {

    case NGX_HTTP_OPENBANK_CRED_API_KEY:
        slot = ngx_array_push(&v->keys);
        if (slot == NULL) {
            return NGX_ERROR;
        }

        *slot = c;
        break;

    case NGX_HTTP_OPENBANK_CRED_HMAC_SECRET:
        sealed = text;
        aad.data = rec->key.data + 1;
        aad.len = 16;

        if (ngx_http_openbank_reg_unseal(v->pool, &sealed, &aad, &secret)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "openbank: the HMAC secret %V of partner \"%V\" "
                          "cannot be unsealed (registry.key changed?)",
                          &rec->key, &pname);
            return NGX_OK;
        }

        if (cv.created >= rp->hmac_created) {
            rp->partner.hmac_secret = secret;
            rp->hmac_created = cv.created;
        }

        break;

    case NGX_HTTP_OPENBANK_CRED_JWKS:
        /* yajl wants its text NUL-terminated */
        text.data = ngx_pnalloc(v->pool, cv.data_len + 1);
        if (text.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(text.data, p, cv.data_len);
        text.data[cv.data_len] = '\0';

        jwks = ngx_pcalloc(v->pool, sizeof(ngx_http_openbank_jwks_t));
        if (jwks == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_openbank_jwks_parse(v->pool, &text, jwks, err,
                                         sizeof(err))
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "openbank: the JWKS %V of partner \"%V\": %s",
                          &rec->key, &pname, err);
            return NGX_OK;
        }

        jwk = jwks->keys.elts;

        for (i = 0; i < jwks->keys.nelts; i++) {
            if (ngx_http_openbank_jwks_find(&rp->jwks, &jwk[i].kid)) {
                continue;           /* a kid of an older JWKS wins */
            }

            dst = ngx_array_push(&rp->jwks.keys);
            id = ngx_array_push(&rp->jwk_creds);
            if (dst == NULL || id == NULL) {
                return NGX_ERROR;
            }

            /* the partner's JWKS owns the key from now on */

            *dst = jwk[i];
            *id = c->id;
            jwk[i].pkey = NULL;
            jwk[i].verifier = NULL;
        }

        rp->partner.jwks = &rp->jwks;
        break;

    default:
        break;
    }

    slot = ngx_array_push(&rp->creds);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    *slot = c;

    slot = ngx_array_push(&v->creds);
    if (slot == NULL) {
        return NGX_ERROR;
    }

    *slot = c;

    if (cv.expires && (v->expires == 0 || cv.expires < v->expires)) {
        v->expires = cv.expires;
    }

    return NGX_OK;
}


/* lookups: an API key, a client id, a secret or a certificate */

ngx_http_openbank_partner_t *
ngx_http_openbank_registry_api_key(ngx_http_request_t *r, u_char *hash)
{
    ngx_int_t                       lo, hi, mid, rc;
    ngx_http_openbank_reg_cred_t  **keys;
    ngx_http_openbank_reg_view_t   *v;

    v = ngx_http_openbank_reg_view(r);
    if (v == NULL) {
        return NULL;
    }

    keys = v->keys.elts;
    lo = 0;
    hi = (ngx_int_t) v->keys.nelts - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;
        rc = ngx_memcmp(keys[mid]->hash, hash, NGX_HTTP_OPENBANK_HASH_LEN);

        if (rc == 0) {
            ngx_http_openbank_reg_touch(r, keys[mid]);
            return &keys[mid]->partner->partner;
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid - 1;
        }
    }

    return NULL;
}


ngx_http_openbank_partner_t *
ngx_http_openbank_registry_client(ngx_http_request_t *r,
    ngx_str_t *client_id)
{
    ngx_http_openbank_reg_view_t     *v;
    ngx_http_openbank_reg_partner_t  *rp;

    if (client_id->len == 0) {
        return NULL;
    }

    v = ngx_http_openbank_reg_view(r);
    if (v == NULL) {
        return NULL;
    }

    rp = ngx_http_openbank_reg_find(v, client_id);

    return rp ? &rp->partner : NULL;
}


/*
 * A client secret's or a certificate's hash among the partner's live
 * credentials of that type, in constant time for each: NGX_OK with the
 * credential, NGX_DECLINED.
 */

ngx_int_t
ngx_http_openbank_registry_secret(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, ngx_uint_t type, u_char *hash,
    uint64_t *cred)
{
    ngx_uint_t                         i;
    ngx_http_openbank_reg_cred_t     **c, *found;
    ngx_http_openbank_reg_partner_t   *rp;

    if (partner == NULL || !partner->registry) {
        return NGX_DECLINED;
    }

    rp = (ngx_http_openbank_reg_partner_t *) partner;
    c = rp->creds.elts;
    found = NULL;

    for (i = 0; i < rp->creds.nelts; i++) {
        if (c[i]->type == type
            && CRYPTO_memcmp(c[i]->hash, hash, NGX_HTTP_OPENBANK_HASH_LEN)
               == 0)
        {
            found = c[i];
        }
    }

    if (found == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_openbank_reg_touch(r, found);
    *cred = found->id;

    return NGX_OK;
}


/* the JWKS credential a kid of the partner comes from */

ngx_int_t
ngx_http_openbank_registry_jwk(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, ngx_str_t *kid, uint64_t *cred)
{
    ngx_uint_t                        i;
    uint64_t                         *id;
    ngx_http_openbank_jwk_t          *jwk;
    ngx_http_openbank_reg_partner_t  *rp;

    if (partner == NULL || !partner->registry) {
        return NGX_DECLINED;
    }

    rp = (ngx_http_openbank_reg_partner_t *) partner;
    jwk = rp->jwks.keys.elts;
    id = rp->jwk_creds.elts;

    for (i = 0; i < rp->jwks.keys.nelts; i++) {
        if (kid->len == 0
            || (jwk[i].kid.len == kid->len
                && ngx_strncmp(jwk[i].kid.data, kid->data, kid->len) == 0))
        {
            *cred = id[i];
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * Whether the credential a registry partner's token was obtained with is
 * still live (NGX_OK), or deleted or expired (NGX_DECLINED).
 */

ngx_int_t
ngx_http_openbank_registry_live(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, uint64_t cred)
{
    ngx_int_t                          lo, hi, mid;
    ngx_http_openbank_reg_cred_t     **c;
    ngx_http_openbank_reg_view_t      *v;

    v = ngx_http_openbank_reg_current;

    if (v == NULL || cred == 0) {
        return NGX_DECLINED;
    }

    c = v->creds.elts;
    lo = 0;
    hi = (ngx_int_t) v->creds.nelts - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;

        if (c[mid]->id == cred) {
            return (&c[mid]->partner->partner == partner) ? NGX_OK
                                                          : NGX_DECLINED;
        }

        if (c[mid]->id < cred) {
            lo = mid + 1;

        } else {
            hi = mid - 1;
        }
    }

    return NGX_DECLINED;
}


/* a registry partner's token: its jti is "<credential id>.<random>" */

uint64_t
ngx_http_openbank_registry_jti(ngx_str_t *jti)
{
    if (jti->len < 18 || jti->data[16] != '.') {
        return 0;
    }

    return ngx_http_openbank_reg_hex(jti->data, 16);
}


/* last_used_at, in the zone, at most every few seconds per worker */

static void
ngx_http_openbank_reg_touch(ngx_http_request_t *r,
    ngx_http_openbank_reg_cred_t *c)
{
    u_char                          hex[17];
    time_t                          now;
    ngx_str_t                       key;
    ngx_http_openbank_main_conf_t  *obmcf;

    now = ngx_time();

    if (now - c->touched < NGX_HTTP_OPENBANK_REG_TOUCH) {
        return;
    }

    c->touched = now;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_sprintf(hex, "c%016uxL", c->id);
    key.data = hex;
    key.len = 17;

    (void) ngx_http_openbank_store_update(obmcf->shm_zone->data,
                                          NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                          &key, 0, 0,
                                          ngx_http_openbank_reg_touched,
                                          &now);
}


static ngx_int_t
ngx_http_openbank_reg_touched(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    int64_t                          now;
    ngx_http_openbank_reg_cred_v_t   cv;

    if (sv->len < sizeof(cv)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    now = *(time_t *) data;

    ngx_memcpy(&cv, sv->value, sizeof(cv));
    cv.last_used = now;
    ngx_memcpy(sv->value, &cv, sizeof(cv));

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_http_openbank_reg_partner_t *
ngx_http_openbank_reg_find(ngx_http_openbank_reg_view_t *v,
    ngx_str_t *client_id)
{
    ngx_int_t                          lo, hi, mid, rc;
    ngx_http_openbank_reg_partner_t  **p;

    p = v->partners.elts;
    lo = 0;
    hi = (ngx_int_t) v->partners.nelts - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;

        rc = ngx_memn2cmp(p[mid]->partner.client_id.data, client_id->data,
                          p[mid]->partner.client_id.len, client_id->len);

        if (rc == 0) {
            return p[mid];
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid - 1;
        }
    }

    return NULL;
}


static int ngx_libc_cdecl
ngx_http_openbank_reg_cmp_name(const void *a, const void *b)
{
    ngx_http_openbank_reg_partner_t  *x;

    x = *(ngx_http_openbank_reg_partner_t **) a;

    return ngx_http_openbank_reg_cmp_named(&x->partner.name, b);
}


/* a name against a partner of the view, for bsearch() */

static int ngx_libc_cdecl
ngx_http_openbank_reg_cmp_named(const void *name, const void *b)
{
    ngx_str_t                        *n;
    ngx_http_openbank_reg_partner_t  *y;

    n = (ngx_str_t *) name;
    y = *(ngx_http_openbank_reg_partner_t **) b;

    return ngx_memn2cmp(n->data, y->partner.name.data, n->len,
                        y->partner.name.len);
}


static int ngx_libc_cdecl
ngx_http_openbank_reg_cmp_client(const void *a, const void *b)
{
    ngx_http_openbank_reg_partner_t  *x, *y;

    x = *(ngx_http_openbank_reg_partner_t **) a;
    y = *(ngx_http_openbank_reg_partner_t **) b;

    return ngx_memn2cmp(x->partner.client_id.data, y->partner.client_id.data,
                        x->partner.client_id.len, y->partner.client_id.len);
}


static int ngx_libc_cdecl
ngx_http_openbank_reg_cmp_hash(const void *a, const void *b)
{
    ngx_http_openbank_reg_cred_t  *x, *y;

    x = *(ngx_http_openbank_reg_cred_t **) a;
    y = *(ngx_http_openbank_reg_cred_t **) b;

    return ngx_memcmp(x->hash, y->hash, NGX_HTTP_OPENBANK_HASH_LEN);
}


static int ngx_libc_cdecl
ngx_http_openbank_reg_cmp_id(const void *a, const void *b)
{
    ngx_http_openbank_reg_cred_t  *x, *y;

    x = *(ngx_http_openbank_reg_cred_t **) a;
    y = *(ngx_http_openbank_reg_cred_t **) b;

    return (x->id < y->id) ? -1 : (x->id > y->id);
}


/* "product limit/day" lines into quotas */

static ngx_int_t
ngx_http_openbank_reg_quotas(ngx_pool_t *pool, ngx_str_t *text,
    ngx_array_t *quotas)
{
    u_char                     *p, *q, *sp, *sl, *last;
    ngx_int_t                   n;
    ngx_http_openbank_quota_t  *quota;

    if (ngx_array_init(quotas, pool, 2, sizeof(ngx_http_openbank_quota_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    last = text->data + text->len;

    for (p = text->data; p < last; p = q + 1) {
        q = ngx_strlchr(p, last, '\n');
        if (q == NULL) {
            q = last;
        }

        sp = ngx_strlchr(p, q, ' ');
        sl = sp ? ngx_strlchr(sp, q, '/') : NULL;

        if (sl == NULL) {
            continue;
        }

        n = ngx_atoi(sp + 1, sl - (sp + 1));
        if (n == NGX_ERROR) {
            continue;
        }

        quota = ngx_array_push(quotas);
        if (quota == NULL) {
            return NGX_ERROR;
        }

        quota->product.data = p;
        quota->product.len = sp - p;
        quota->limit = n;
        quota->window = (q - (sl + 1) == 3) ? NGX_HTTP_OPENBANK_WINDOW_DAY
                                            : NGX_HTTP_OPENBANK_WINDOW_MONTH;
    }

    return NGX_OK;
}


static uint64_t
ngx_http_openbank_reg_hex(u_char *p, size_t len)
{
    uint64_t  v;
    u_char    c;

    v = 0;

    while (len--) {
        c = *p++;

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            v = v * 16 + (c - 'a' + 10);

        } else {
            return 0;
        }
    }

    return v;
}


/* one record of the registry, copied into the request's pool */

ngx_int_t
ngx_http_openbank_registry_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    ssize_t                         n;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    value->data = ngx_pnalloc(r->pool, NGX_HTTP_OPENBANK_REG_VALUE_MAX + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    n = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_REGISTRY, key,
                                    value->data,
                                    NGX_HTTP_OPENBANK_REG_VALUE_MAX, NULL);
    if (n < 0 || n > NGX_HTTP_OPENBANK_REG_VALUE_MAX) {
        return NGX_DECLINED;
    }

    value->len = n;
    value->data[n] = '\0';

    return NGX_OK;
}


/* the registry's partners as this worker sees them, for openbank_status */

ngx_int_t
ngx_http_openbank_registry_partners(ngx_http_request_t *r, ngx_array_t *out)
{
    ngx_uint_t                         i;
    ngx_http_openbank_partner_t      **pp;
    ngx_http_openbank_reg_view_t      *v;
    ngx_http_openbank_reg_partner_t  **rp;

    v = ngx_http_openbank_reg_view(r);
    if (v == NULL) {
        return NGX_OK;
    }

    rp = v->partners.elts;

    for (i = 0; i < v->partners.nelts; i++) {
        pp = ngx_array_push(out);
        if (pp == NULL) {
            return NGX_ERROR;
        }

        *pp = &rp[i]->partner;
    }

    return NGX_OK;
}


/*
 * Another gateway's change (docs/cluster.md, "Changes on every
 * gateway"): its records, framed as the journal's, go into the zone
 * under one lock through the replay's handlers, the generation moves so
 * that the workers make their views again, and the records go to this
 * gateway's journal, so that a restart keeps them.  The audit events
 * stay each gateway's own (their sequence is local).  A snapshot (the
 * cluster's whole registry, for a gateway that was away too long) also
 * deletes the partners and credentials it does not hold.  NGX_DECLINED:
 * malformed, nothing applied.
 */

typedef struct {
    ngx_http_openbank_reg_load_t    ld;
    u_char                         *start;
    u_char                         *p;         /* the journal's copy */
    ngx_array_t                     keys;      /* ngx_str_t: the snapshot's */
    ngx_array_t                     gone;      /* ngx_str_t: not in it */
    u_char                         *records;
    size_t                          len;
    ngx_http_openbank_journal_entry_t
                                   *entry;     /* the journal's copy */
    ngx_log_t                      *log;
    ngx_uint_t                      snapshot;
    ngx_uint_t                      malformed;
} ngx_http_openbank_reg_sync_t;


static ngx_int_t
ngx_http_openbank_reg_sync_put(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_reg_sync_t *sy = data;

    ngx_str_t                          key, value, *k;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;
    value.data = key.data + key.len;
    value.len = len - sizeof(head) - key.len;

    if (key.len < 2
        || (key.data[0] != 'p' && key.data[0] != 'c' && key.data[0] != 's')
        || value.len > NGX_HTTP_OPENBANK_REG_VALUE_MAX)
    {
        return NGX_OK;
    }

    if (sy->ld.zone == NULL) {
        if (sy->snapshot) {
            k = ngx_array_push(&sy->keys);
            if (k == NULL) {
                return NGX_ERROR;
            }

            *k = key;
        }

        return NGX_OK;
    }

    (void) ngx_http_openbank_reg_replay_put(&sy->ld, payload, len);

    sy->p = ngx_http_openbank_journal_record(sy->p,
                                             NGX_HTTP_OPENBANK_REG_PUT_RECORD,
                                             0, &key, value.data, value.len);
    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_reg_sync_del(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_reg_sync_t *sy = data;

    ngx_str_t                          key;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;

    if (sy->ld.zone == NULL
        || (key.data[0] != 'p' && key.data[0] != 'c' && key.data[0] != 's'))
    {
        return NGX_OK;
    }

    (void) ngx_http_openbank_reg_replay_del(&sy->ld, payload, len);

    sy->p = ngx_http_openbank_journal_record(sy->p,
                                             NGX_HTTP_OPENBANK_REG_DEL_RECORD,
                                             0, &key, NULL, 0);
    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_openbank_reg_sync_cmp(const void *a, const void *b)
{
    const ngx_str_t  *x = a, *y = b;

    size_t     n;
    ngx_int_t  rc;

    n = ngx_min(x->len, y->len);
    rc = ngx_memcmp(x->data, y->data, n);

    if (rc != 0) {
        return (int) rc;
    }

    return (x->len < y->len) ? -1 : (x->len > y->len);
}


/* a record of this gateway that the snapshot does not hold */

static ngx_int_t
ngx_http_openbank_reg_sync_absent(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_reg_sync_t *sy = data;

    ngx_str_t  *k;

    if (sv->key.len < 2
        || (sv->key.data[0] != 'p' && sv->key.data[0] != 'c'
            && sv->key.data[0] != 's'))
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (bsearch(&sv->key, sy->keys.elts, sy->keys.nelts, sizeof(ngx_str_t),
                ngx_http_openbank_reg_sync_cmp)
        != NULL)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    k = ngx_array_push(&sy->gone);
    if (k == NULL) {
        sy->malformed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    k->data = ngx_pnalloc(sy->ld.pool, sv->key.len);
    if (k->data == NULL) {
        sy->malformed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    ngx_memcpy(k->data, sv->key.data, sv->key.len);
    k->len = sv->key.len;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_reg_sync_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_reg_sync_t *sy = data;

    size_t                         size;
    uint64_t                       generation;
    ngx_str_t                     *k;
    ngx_uint_t                     i;
    ngx_http_openbank_journal_pt   handlers[3];

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_REG_PUT_RECORD] =
                                        ngx_http_openbank_reg_sync_put;
    handlers[NGX_HTTP_OPENBANK_REG_DEL_RECORD] =
                                        ngx_http_openbank_reg_sync_del;

    if (sy->snapshot) {
        ngx_qsort(sy->keys.elts, sy->keys.nelts, sizeof(ngx_str_t),
                  ngx_http_openbank_reg_sync_cmp);

        (void) ngx_http_openbank_store_walk(zone,
                                            NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                            ngx_http_openbank_reg_sync_absent,
                                            sy);
        if (sy->malformed) {
            return NGX_ERROR;
        }
    }

    /* the journal's copy: the records, and a snapshot's deletions */

    size = sy->len;
    k = sy->gone.elts;

    for (i = 0; i < sy->gone.nelts; i++) {
        size += NGX_HTTP_OPENBANK_JOURNAL_FRAME
                + sizeof(ngx_http_openbank_journal_head_t) + k[i].len;
    }

    sy->entry = ngx_alloc(sizeof(ngx_http_openbank_journal_entry_t) + size,
                          sy->log);
    if (sy->entry == NULL) {
        return NGX_ERROR;
    }

    sy->entry->record = (u_char *) &sy->entry[1];
    sy->start = sy->entry->record;
    sy->p = sy->start;

    if (sy->snapshot) {

        for (i = 0; i < sy->gone.nelts; i++) {
            (void) ngx_http_openbank_reg_del(zone, &k[i], sy->ld.pool);

            sy->p = ngx_http_openbank_journal_record(sy->p,
                                          NGX_HTTP_OPENBANK_REG_DEL_RECORD,
                                          0, &k[i], NULL, 0);
        }
    }

    sy->ld.zone = zone;

    if (ngx_http_openbank_journal_parse(sy->records, sy->len, handlers, 3,
                                        sy)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    generation = 0;

    (void) ngx_http_openbank_store_update(zone,
                                          NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                          &ngx_http_openbank_reg_gen_key,
                                          sizeof(uint64_t), 0,
                                          ngx_http_openbank_reg_bump,
                                          &generation);
    return NGX_OK;
}


static void
ngx_http_openbank_reg_sync_written(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc)
{
    ngx_free(e);
}


ngx_int_t
ngx_http_openbank_registry_sync(ngx_cycle_t *cycle, u_char *records,
    size_t len, ngx_uint_t snapshot)
{
    ngx_int_t                           rc;
    ngx_pool_t                         *pool;
    ngx_http_openbank_journal_t        *j;
    ngx_http_openbank_reg_sync_t        sy;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_journal_entry_t  *e;
    ngx_http_openbank_journal_pt        handlers[3];

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL
        || !ngx_http_openbank_registry_on(obmcf))
    {
        return NGX_OK;
    }

    pool = ngx_create_pool(4096, cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&sy, sizeof(sy));
    sy.ld.pool = pool;
    sy.records = records;
    sy.len = len;
    sy.snapshot = snapshot;

    if (ngx_array_init(&sy.keys, pool, 64, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&sy.gone, pool, 8, sizeof(ngx_str_t)) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    /* checked (and a snapshot's keys listed) before the zone is touched */

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_REG_PUT_RECORD] =
                                        ngx_http_openbank_reg_sync_put;
    handlers[NGX_HTTP_OPENBANK_REG_DEL_RECORD] =
                                        ngx_http_openbank_reg_sync_del;

    rc = ngx_http_openbank_journal_parse(records, len, handlers, 3, &sy);

    if (rc != NGX_OK) {
        ngx_destroy_pool(pool);
        return (rc == NGX_DECLINED) ? NGX_DECLINED : NGX_ERROR;
    }

    sy.log = cycle->log;

    rc = ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                        ngx_http_openbank_reg_sync_atomic,
                                        &sy);
    e = sy.entry;

    if (sy.ld.full) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "openbank: zone \"%V\" is full: a registry change of "
                      "the cluster is not applied in full",
                      &obmcf->shm_zone->shm.name);
    }

    if (rc != NGX_OK || sy.p == sy.start) {
        if (e) {
            ngx_free(e);
        }

        ngx_destroy_pool(pool);
        return rc;
    }

    e->len = sy.p - sy.start;
    e->handler = ngx_http_openbank_reg_sync_written;

    ngx_destroy_pool(pool);

    j = &ngx_http_openbank_reg_j;

    if (obmcf->state_path.len == 0
        || ngx_http_openbank_journal_init(j, cycle) != NGX_OK
        || ngx_http_openbank_journal_open_lock(j, cycle->log) != NGX_OK)
    {
        ngx_free(e);
        return NGX_OK;
    }

    ngx_http_openbank_journal_submit(j, e);

    return NGX_OK;
}


/*
 * The cluster's registry is empty (cluster mode enabled on gateways that
 * had one): this gateway's partners, credentials and used statements,
 * framed, to publish as the cluster's first (the audit stays its own).
 */

typedef struct {
    ngx_pool_t                         *pool;
    ngx_http_openbank_journal_dump_t    dump;
} ngx_http_openbank_reg_seed_t;


static ngx_int_t
ngx_http_openbank_reg_seed_one(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_reg_seed_t *sd = data;

    u_char  c;

    c = sv->key.len > 1 ? sv->key.data[0] : 0;

    if (c != 'p' && c != 'c' && c != 's') {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_http_openbank_journal_dump_record(&sd->dump,
                                          NGX_HTTP_OPENBANK_REG_PUT_RECORD,
                                          0, &sv->key, sv->value, sv->len);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_reg_seed_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_reg_seed_t *sd = data;

    (void) ngx_http_openbank_store_walk(zone,
                                        NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                        ngx_http_openbank_reg_seed_one, sd);
    if (sd->dump.size == 0) {
        return NGX_OK;
    }

    sd->dump.buf = ngx_pnalloc(sd->pool, sd->dump.size);
    if (sd->dump.buf == NULL) {
        return NGX_ERROR;
    }

    sd->dump.p = sd->dump.buf;

    (void) ngx_http_openbank_store_walk(zone,
                                        NGX_HTTP_OPENBANK_TABLE_REGISTRY,
                                        ngx_http_openbank_reg_seed_one, sd);
    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_registry_records(ngx_cycle_t *cycle, ngx_pool_t *pool,
    ngx_str_t *out)
{
    ngx_http_openbank_reg_seed_t    sd;
    ngx_http_openbank_main_conf_t  *obmcf;

    ngx_str_null(out);

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL
        || !ngx_http_openbank_registry_on(obmcf))
    {
        return NGX_OK;
    }

    ngx_memzero(&sd, sizeof(sd));
    sd.pool = pool;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_reg_seed_atomic, &sd)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (sd.dump.buf) {
        out->data = sd.dump.buf;
        out->len = sd.dump.p - sd.dump.buf;
    }

    return NGX_OK;
}

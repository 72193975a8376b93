/*
 * cred_eks.c - the kubernetes-eks credential source: EKS tokens minted by
 * bl_eks_source_t (src/aws/eks_source.h), kept fresh by a refresher thread
 * so that the agent's loop thread never waits on STS, IMDS or any other
 * network call. See cred.h for the contract and docs/EKS.md for the setup.
 *
 * Sessions: one shared session (the configured session_name), and with
 * per_identity_sessions one per byline identity, RoleSessionName
 * "byline-<identity>", at most BL_EK_MAX_IDENTITIES of them (least recently
 * used evicted). The loop thread only looks up and copies a header line
 * under the mutex; the refresher thread does every blocking call with the
 * mutex released, marking the session busy so it is never evicted under it.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "agent/cred.h"
#include "aws/eks_source.h"
#include "core/log.h"

#define BL_EK_SLACK      60       /* a token closer than this to its end is not handed out */
#define BL_EK_IDLE       900      /* an identity unused this long is not re-minted ahead */
#define BL_EK_RETRY      5        /* seconds between attempts after a failure */
#define BL_EK_ID_MAX     64       /* bl_identity_name_check's bound */
#define BL_EK_LINE_MAX   (BL_EKS_TOKEN_MAX + 32)

typedef struct {
    char identity[BL_EK_ID_MAX + 1];    /* "" for the shared session */
    bl_eks_source_t src;
    char line[BL_EK_LINE_MAX];          /* "Authorization: Bearer k8s-aws-v1....\r\n" (secret) */
    size_t len;                         /* 0: no token yet */
    time_t expires, refresh_at;         /* of the token in line */
    time_t used;                        /* last request (LRU, idle) */
    time_t retry_at;                    /* after a failure */
    char err[256];                      /* the last attempt's failure, "" after a success */
    int busy;                           /* the refresher works on it (mutex released) */
} bl_ek_sess_t;

typedef struct {
    bl_cred_t base;
    bl_cred_eks_opts_t o;               /* strings below are copies */
    char region[64], cluster[BL_EKS_CLUSTER_MAX + 1], role_arn[BL_AWS_ARN_MAX], session_name[80];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int started, stop;
    bl_ek_sess_t *sess[BL_EK_MAX_IDENTITIES + 1]; /* [0]: the shared session */
    size_t n;
} bl_ekcred_t;

/* Writes "byline-<identity>" into out[80], mapped to STS's RoleSessionName
 * alphabet [\w+=,.@-] (other bytes become '-') and, if longer than 64, cut
 * to 55 bytes plus '-' and 8 hex digits of the identity's SHA-256 so that
 * long names stay distinct. Returns out. */
const char *bl_cred_eks_session_name(const char *identity, char out[80])
{
    size_t n = (size_t)snprintf(out, 80, "byline-%.64s", identity);
    for (size_t i = 7; i < n; i++) {
        unsigned char ch = (unsigned char)out[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 (ch && strchr("_+=,.@-", ch));
        if (!ok)
            out[i] = '-';
    }
    if (n > 64) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        EVP_Digest(identity, strlen(identity), md, &mdlen, EVP_sha256(), NULL);
        snprintf(out + 55, 80 - 55, "-%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
    }
    return out;
}

/* Returns a new session (no I/O) for identity ("" = shared), or NULL with err. */
static bl_ek_sess_t *bl_ek_sess_new(bl_ekcred_t *e, const char *identity, char *err, size_t errlen)
{
    char name[80];
    bl_ek_sess_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->identity, sizeof(s->identity), "%s", identity);
    const char *sn = *identity ? bl_cred_eks_session_name(identity, name) : e->session_name;
    if (bl_eks_source_init(&s->src, e->region, e->cluster, e->role_arn, sn, 0, err, errlen) != BL_OK) {
        free(s);
        return NULL;
    }
    s->src.remint_after = (int)e->o.remint_after;
    return s;
}

static void bl_ek_sess_free(bl_ek_sess_t *s)
{
    if (s == NULL)
        return;
    bl_eks_source_free(&s->src);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

/* Returns the session due for work (the refresher's pick), or NULL. Lock held. */
static bl_ek_sess_t *bl_ek_due(bl_ekcred_t *e, time_t now)
{
    for (size_t i = 0; i < e->n; i++) {
        bl_ek_sess_t *s = e->sess[i];
        if (s->busy || (s->err[0] && now < s->retry_at))
            continue;
        if (i > 0 && now - s->used > BL_EK_IDLE)
            continue; /* an idle identity (even a failing one) waits until it comes back */
        if (s->len == 0 || now >= s->refresh_at)
            return s;
    }
    return NULL;
}

/* Renews one session with the lock released (blocking calls). Lock held
 * on entry and on return. */
static void bl_ek_renew(bl_ekcred_t *e, bl_ek_sess_t *s, time_t now)
{
    bl_eks_token_t tok;
    char err[256] = "";
    s->busy = 1;
    pthread_mutex_unlock(&e->lock);
    int rc = bl_eks_source_token(&s->src, now, &tok, err, sizeof(err));
    pthread_mutex_lock(&e->lock);
    s->busy = 0;
    if (rc == BL_OK) {
        int n = snprintf(s->line, sizeof(s->line), "Authorization: Bearer %s\r\n", tok.token);
        s->len = n > 0 && (size_t)n < sizeof(s->line) ? (size_t)n : 0;
        time_t remint = e->o.remint_after ? (time_t)e->o.remint_after : BL_EKS_REMINT_AFTER;
        s->refresh_at = tok.signed_at + remint;
        s->expires = tok.expires;
        s->err[0] = '\0';
        bl_debug("kubernetes-eks: minted a token for %s%s (as %s)", s->identity[0] ? "identity " : "the shared session",
                 s->identity, bl_eks_source_identity(&s->src));
    } else {
        snprintf(s->err, sizeof(s->err), "%s", err);
        s->retry_at = now + BL_EK_RETRY;
        bl_warn("kubernetes-eks: cluster %s%s%s: %s", e->cluster, s->identity[0] ? ", identity " : "", s->identity, err);
    }
    bl_eks_token_clear(&tok);
}

static void *bl_ek_thread(void *arg)
{
    bl_ekcred_t *e = arg;
    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        time_t now = time(NULL);
        bl_ek_sess_t *s = bl_ek_due(e, now);
        if (s) {
            bl_ek_renew(e, s, now);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1; /* wakes each second: re-mint times are in seconds */
        pthread_cond_timedwait(&e->cond, &e->lock, &until);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* Returns the session for identity, adding it (evicting the least recently
 * used idle one past the bound); NULL with err. Lock held. */
static bl_ek_sess_t *bl_ek_find(bl_ekcred_t *e, const char *identity, char *err, size_t errlen)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->sess[i]->identity, identity))
            return e->sess[i];
    if (e->n > BL_EK_MAX_IDENTITIES) {
        size_t old = 0;
        for (size_t i = 1; i < e->n; i++)
            if (!e->sess[i]->busy && (old == 0 || e->sess[i]->used < e->sess[old]->used))
                old = i;
        if (old == 0) {
            snprintf(err, errlen, "every per-identity session is being renewed; try again");
            return NULL;
        }
        bl_ek_sess_free(e->sess[old]);
        e->sess[old] = e->sess[--e->n];
    }
    bl_ek_sess_t *s = bl_ek_sess_new(e, identity, err, errlen);
    if (s)
        e->sess[e->n++] = s;
    return s;
}

/* The header op (loop thread): copies the session's current line, never
 * waiting for the network. Returns BL_OK; BL_AGAIN when the token is being
 * minted (the refresher is woken; ask again shortly); BL_ERROR with err. */
static int bl_ek_header_as(bl_cred_t *base, bl_str_t identity, bl_buf_t *out, bl_buf_t *err)
{
    bl_ekcred_t *e = (bl_ekcred_t *)base;
    char id[BL_EK_ID_MAX + 1] = "", why[256] = "";
    time_t now = time(NULL);
    int rc = BL_AGAIN;
    if (e->o.per_identity && identity.len > 0) {
        if (identity.len > BL_EK_ID_MAX) {
            bl_buf_printf(err, "the identity name is too long for a session");
            return BL_ERROR;
        }
        memcpy(id, identity.p, identity.len);
    }
    pthread_mutex_lock(&e->lock);
    bl_ek_sess_t *s = bl_ek_find(e, id, why, sizeof(why));
    if (s == NULL) {
        rc = BL_ERROR;
    } else {
        s->used = now;
        if (s->len && now < s->expires - BL_EK_SLACK)
            rc = bl_buf_append(out, s->line, s->len);
        else if (s->err[0]) {
            snprintf(why, sizeof(why), "%s", s->err);
            rc = BL_ERROR;
        }
        if (rc != BL_OK || now >= s->refresh_at)
            pthread_cond_signal(&e->cond);
    }
    pthread_mutex_unlock(&e->lock);
    if (rc == BL_ERROR)
        bl_buf_printf(err, "%s", why[0] ? why : "out of memory");
    return rc;
}

static int bl_ek_header(bl_cred_t *base, bl_buf_t *out, bl_buf_t *err)
{
    return bl_ek_header_as(base, BL_STR_NULL, out, err);
}

static void bl_ek_free(bl_cred_t *base)
{
    bl_ekcred_t *e = (bl_ekcred_t *)base;
    if (e->started) {
        pthread_mutex_lock(&e->lock);
        e->stop = 1;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
    }
    for (size_t i = 0; i < e->n; i++)
        bl_ek_sess_free(e->sess[i]);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    OPENSSL_cleanse(e, sizeof(*e));
    free(e);
}

static const bl_cred_ops_t bl_eks_ops = { "kubernetes-eks", bl_ek_header, bl_ek_free, bl_ek_header_as };

/* Copies src into dst[cap]. Returns BL_OK, or BL_ERROR if it does not fit. */
static int bl_ek_copy(char *dst, size_t cap, const char *src)
{
    int n = snprintf(dst, cap, "%s", src ? src : "");
    return n >= 0 && (size_t)n < cap ? BL_OK : BL_ERROR;
}

bl_cred_t *bl_cred_eks(const bl_cred_eks_opts_t *o, bl_buf_t *err)
{
    char why[256] = "";
    bl_ekcred_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->base.ops = &bl_eks_ops;
    e->o = *o;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    if (bl_ek_copy(e->region, sizeof(e->region), o->region) | bl_ek_copy(e->cluster, sizeof(e->cluster), o->cluster) |
        bl_ek_copy(e->role_arn, sizeof(e->role_arn), o->role_arn) |
        bl_ek_copy(e->session_name, sizeof(e->session_name), o->session_name)) {
        snprintf(why, sizeof(why), "region, cluster, role_arn or session_name is too long");
        goto fail;
    }
    if (o->per_identity && !e->role_arn[0]) {
        snprintf(why, sizeof(why), "per_identity_sessions needs role_arn (a session is an assumed role)");
        goto fail;
    }
    if ((e->sess[0] = bl_ek_sess_new(e, "", why, sizeof(why))) == NULL)
        goto fail;
    e->n = 1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits it: signals go to the loop's thread */
    int prc = pthread_create(&e->thread, NULL, bl_ek_thread, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        snprintf(why, sizeof(why), "cannot start the token refresher thread");
        goto fail;
    }
    pthread_setname_np(e->thread, "byline-eks");
    e->started = 1;
    return &e->base;
fail:
    bl_buf_printf(err, "kubernetes-eks: %s", why);
    bl_ek_free(&e->base);
    return NULL;
}

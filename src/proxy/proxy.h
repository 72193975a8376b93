/*
 * proxy.h - the gateway's internal types, shared by the files of
 * src/proxy/ (server.c, conn.c, request.c, exchange.c, status.c).
 *
 * Ownership: a worker owns its loop, listener, upstreams and connections.
 * A connection owns its client socket, its buffers and at most one request
 * in flight; the request owns its upstream stream until it releases it.
 */
#ifndef BL_PROXY_PROXY_H
#define BL_PROXY_PROXY_H

#include <openssl/ssl.h>
#include <pthread.h>
#include "audit/batch.h"
#include "audit/ledger.h"
#include "audit/record.h"
#include "auth/idtable.h"
#include "auth/jwks_cache.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/loop.h"
#include "http/http1.h"
#include "kube/reqinfo.h"
#include "net/sock.h"
#include "proxy/upstream.h"

#define BL_IO_BUF_MAX   (64 * 1024)   /* each direction's buffer bound */
#define BL_PEEK_MAX     (64 * 1024)   /* body bytes read before deciding, for create/scale */
#define BL_UHEAD_MAX    (64 * 1024)   /* the rewritten request head */

typedef struct bl_server_s bl_server_t;
typedef struct bl_worker_s bl_worker_t;
typedef struct bl_conn_s bl_conn_t;
typedef struct bl_req_s bl_req_t;

/* Process-wide state, read-only while workers run (but for the counters). */
struct bl_server_s {
    const bl_config_t *cfg;
    SSL_CTX *tls;                 /* the gateway's listener context */
    SSL_CTX **upstream_tls;       /* one per cfg->conns[i] */
    bl_ledger_t *ledger;          /* the audit ledger and its writer thread */
    struct bl_capsync_s *capsync; /* session captures' fsyncs, off the workers (audit/capsync.h) */
    bl_jwks_cache_t *jwks;        /* JWT issuers' key sets and their refresher, or NULL */
    bl_idreg_t *idreg;            /* the live identity table (auth/idtable.h): lookups go there */
    struct bl_hub_s *hub;         /* agent sessions (agent_hub.h), or NULL without via: agent */
    struct bl_review_store_s *reviews; /* review/store.h, or NULL when no rule has effect review */
    bl_worker_t *workers;
    int nworkers;
    volatile int draining;        /* signals received: 1 drains, 2 stops now */
    int running;                  /* workers still in their loop (atomic) */
};

struct bl_worker_s {
    bl_server_t *srv;
    int index;
    pthread_t thread;
    bl_loop_t *loop;
    bl_io_t listen_io;
    bl_timer_t accept_retry;      /* after EMFILE */
    bl_upstream_t **upstreams;    /* one per cfg->conns[i] */
    bl_http_header_t *hdrs;       /* parse scratch, cfg->max_headers entries */
    bl_buf_t scratch;             /* renders and audit lines, reused per request */
    bl_audit_batch_t audit;       /* this worker's audit lines, written once per loop turn */
    bl_idcache_t ids;             /* this worker's reference to the current identity table */
    bl_conn_t *conns;             /* all open connections (doubly linked) */
    unsigned nconns;
    int draining;
    uint64_t drain_until;         /* loop clock: force-close after this */
    bl_timer_t drain_deadline;
    bl_timer_t review_poll;       /* worker 0, with a review store: decisions into the ledger */
};

enum bl_conn_state {
    BL_CONN_HANDSHAKE,  /* TLS handshake */
    BL_CONN_HEAD,       /* waiting for / reading a request head */
    BL_CONN_BUSY,       /* a request is in flight (see bl_req_t.phase) */
    BL_CONN_AUTHWAIT,   /* a JWT waits for its issuer's keys; its head stays unread in `in` */
    BL_CONN_CLOSED,
};

struct bl_conn_s {
    bl_worker_t *w;
    bl_conn_t *prev, *next;
    bl_sock_t *sock;
    int state;
    bl_timer_t timer;             /* handshake/header or idle timeout */
    bl_defer_t resume;            /* re-run processing without an I/O edge */
    bl_buf_t in;                  /* bytes from the client not yet used */
    bl_buf_t out;                 /* bytes for the client not yet written */
    bl_req_t *req;                /* the request in flight, or NULL */
    const bl_identity_t *cert_id; /* identity from the client certificate, if any (in cert_ids) */
    bl_idtable_t *cert_ids;       /* the identity table cert_id was mapped in (a reference), or NULL */
    char cert_err[128];           /* why a presented certificate maps to nobody */
    const char *close_reason;     /* static; recorded for a request cut off by a close */
    bl_jwks_waiter_t auth_wait;   /* AUTHWAIT: for the issuer's key refresh */
    unsigned requests;            /* served on this connection */
    unsigned processing : 1;      /* inside bl_conn_process (re-entry guard) */
    unsigned again : 1;           /* state changed: run the machine once more */
    unsigned timed_head : 1;      /* the header timeout runs for this head */
    unsigned client_eof : 1;      /* the client half-closed */
    unsigned close_after : 1;     /* close once the current response is out */
    unsigned auth_waited : 1;     /* this head already waited for keys: do not wait again */
};

enum bl_req_phase {
    BL_REQ_PEEK,        /* collecting the start of the body before deciding */
    BL_REQ_AUDIT,       /* intent queued; waiting for it to be written */
    BL_REQ_CONNECT,     /* waiting for an upstream stream */
    BL_REQ_EXCHANGE,    /* head sent; bodies flowing */
    BL_REQ_TUNNEL,      /* after 101: raw bytes both ways */
    BL_REQ_REPLY,       /* byline's own response (Status) being written */
};

struct bl_req_s {
    bl_conn_t *conn;
    int phase;
    bl_audit_rec_t rec;
    bl_kreq_t *kreq;              /* owned until the intent is written, then NULL */
    char *action;                 /* rendered kubectl command (owned), or NULL */
    int has_intent;               /* an intent line was written */
    bl_audit_waiter_t audit_wait; /* for the intent line to be written */
    int recorded;                 /* the result line was written */
    const bl_connection_t *connection;
    bl_upstream_t *up;
    bl_upwait_t wait;
    bl_stream_t *us;              /* upstream stream, owned until released */
    int us_pooled;                /* it came from the pool (may be stale) */
    bl_buf_t uhead;               /* rewritten request head, kept for one retry */
    size_t uhead_sent;
    int retries;                  /* re-sends after a stale pooled connection */
    int client_fault;             /* the client's body was malformed (400, not 502) */
    int portforward;              /* pods/portforward (the tap reads channels differently) */
    int watch;                    /* a watch: cut short, it ends with an ERROR event (exchange.c) */
    struct bl_tap_s *tap;         /* after a 101: decodes the exec outcome (owned), or NULL */
    char exec_json[512];          /* the outcome as canonical JSON, for the result entry */
    char resource[64];            /* kept past the intent, for body rules */
    bl_buf_t reqbody;             /* request body as audited (audit.level Request+) */
    bl_buf_t respcap;             /* first audit.body_max bytes of the response body (RequestResponse) */
    bl_buf_t respbody;            /* ...as audited */
    int upgrade;                  /* the client asked for websocket/SPDY */
    int minor;                    /* client's HTTP minor version */
    int is_head;                  /* HEAD request: the response has no body */
    bl_str_t method;              /* points into `method_buf` */
    char method_buf[16];
    char ctype[128];              /* Content-Type, for reading the body's start */
    char body_sha256[65];         /* hex SHA-256 of the whole request body when the peek held
                                     all of it ("" otherwise): part of a review's command key */
    int expect_continue;          /* Expect: 100-continue: do not wait for the body */
    int close_requested;          /* Connection: close, or HTTP/1.0 */
    bl_identity_t *jwt_id;        /* the identity a JWT mapped to (owned; rec.actor points in), or NULL */
    uint64_t retry_after;         /* a 429's Retry-After seconds (guard.c), 0: none */
    bl_idtable_t *ids;            /* the identity table rec.actor points into (a reference), or NULL */
    bl_timer_t hold;              /* policy.review_hold: polls the review store (request.c) */
    uint64_t hold_until;          /* loop clock: the hold's end; 0 = not held */
    char *hold_msg;               /* the pending review's 403 message while held (owned), or NULL */

    /* request body: client -> upstream */
    bl_body_t qbody;
    uint64_t qleft;               /* BL_BODY_LENGTH: bytes still to forward */
    bl_chunked_t qchunk;
    int qdone;
    bl_buf_t qout;                /* re-encoded chunks for the upstream */

    /* response: upstream -> client */
    bl_buf_t uin;                 /* bytes from the upstream not yet used */
    int rhead_done;
    int rstatus;
    bl_body_t rbody;
    uint64_t rleft;
    bl_chunked_t rchunk;
    int rchunked_out;             /* we frame the client's copy as chunked */
    int rjson;                    /* the response is application/json */
    int rdecode;                  /* the body goes through the decoder (chunked in or out) */
    int informational;            /* 1xx responses seen */
    int rdone;
    int upstream_reusable;
    int upstream_eof;
    int us_shut;                  /* tunnel: we sent FIN upstream */
    int client_shut;              /* tunnel: we sent FIN to the client */
};

/* server.c */
int bl_server_run(const bl_config_t *cfg);

/* conn.c */
void bl_conn_accept(bl_worker_t *w, int fd);
void bl_conn_close(bl_conn_t *c);
void bl_conn_process(bl_conn_t *c);          /* run the state machine now */
void bl_conn_request_done(bl_conn_t *c);     /* the request ended; next or idle */
int bl_conn_flush(bl_conn_t *c);             /* write `out`; BL_OK, BL_AGAIN, BL_ERROR */
void bl_conn_drain(bl_conn_t *c);            /* SIGTERM: close if idle, else after this request */
/* Parks the connection in AUTHWAIT (c->req already freed, the head still in
 * c->in) until c->auth_wait fires or BL_AUTH_WAIT_MS pass; then the head is
 * parsed again with auth_waited set. */
void bl_conn_auth_park(bl_conn_t *c);
/* Maps the client certificate in identity table t (once per table). */
void bl_conn_client_cert(bl_conn_t *c, bl_idtable_t *t);
#define BL_AUTH_WAIT_MS 3000

/* request.c */
/* Takes a parsed head (pointing into c->in, head_len bytes) and starts the
 * request: it replies itself, or moves on to the upstream. Consumes the
 * head from c->in. */
void bl_req_start(bl_conn_t *c, const bl_http_request_t *hr, size_t head_len);
/* Refuses bytes that are not a valid request head: audited, then closed. */
void bl_req_reject(bl_conn_t *c, int code, const char *why);
void bl_req_peek(bl_req_t *r);               /* PEEK: decide once enough body is in */
void bl_req_free(bl_req_t *r);               /* releases everything, no record */
void bl_req_review_poll(bl_timer_t *t);      /* timer: review decisions into the ledger (data: worker) */
void bl_req_record(bl_req_t *r);             /* write the result record (once) */
void bl_req_finish(bl_req_t *r);             /* record, free, then the next request */

/* agent_accept.c */
/* Returns 1 if the head is an agent dialling in (POST /byline/agent/v1/connect). */
int bl_agent_accept_wants(const bl_http_request_t *hr);
/* Checks the agent's key and connections; on success the connection's TLS
 * socket goes to the agent hub, else a 4xx; either way `c` is closed. */
void bl_agent_accept(bl_conn_t *c, const bl_http_request_t *hr, size_t head_len);

/* exchange.c */
void bl_exchange_connect(bl_req_t *r);       /* after the intent is written */
void bl_exchange_run(bl_req_t *r);           /* move whatever can move */
void bl_exchange_abort(bl_req_t *r, const char *why);

/* status.c */
/* Queues a Kubernetes Status JSON response for the request and writes its
 * result record; the connection finishes the request once it is sent. */
void bl_reply_status(bl_req_t *r, int code, const char *reason, const char *fmt, ...) BL_PRINTF(4, 5);
/* When not even a record can be made (out of memory): write a Status if
 * the socket takes it at once, log, and close the connection. */
void bl_conn_reply_raw(bl_conn_t *c, int code, const char *reason, const char *message);

#endif

/*
 * cmd_agent_key.c - `byline agent-key add|list|remove`: the keys byline
 * agents authenticate with (DIR/agent-keys.yaml, see auth/agentkey.h).
 * A key is printed once on stdout and never stored: only its SHA-256.
 * `byline serve` reads the file when it starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "auth/agentkey.h"
#include "cli/cli.h"
#include "cli/cmd.h"
#include "config/file.h"
#include "config/values.h"

static const char bl_ak_help[] =
    "usage: byline agent-key add NAME --connection C [--connection C]... --dir DIR\n"
    "       byline agent-key list --dir DIR\n"
    "       byline agent-key remove NAME --dir DIR\n"
    "\n"
    "add     registers agent NAME for the given connections (each configured in\n"
    "        DIR/byline.yaml with via: agent) and prints its new key on stdout, once:\n"
    "        only its SHA-256 is stored, in DIR/agent-keys.yaml.\n"
    "          byline agent-key add eks-vpc-1 --connection prod-eks --dir DIR > agent.key\n"
    "list    shows every agent key: name, connections, created.\n"
    "remove  deletes agent NAME's key (a running gateway notices at its next start).\n";

typedef struct {
    const char *dir, *name;
    const char *conns[BL_AGENTKEY_CONNS];
    size_t nconns;
} bl_akopt_t;

/* Parses the options after the verb. Returns BL_EXIT_OK, an exit status,
 * or -1 after printing help. */
static int bl_ak_args(int argc, char **argv, bl_akopt_t *o, int want_name)
{
    enum { O_DIR = 256, O_CONN };
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "dir", required_argument, NULL, O_DIR },
        { "connection", required_argument, NULL, O_CONN },
        { NULL, 0, NULL, 0 },
    };
    const char *why;
    int c;
    bl_cli_getopt_reset();
    while ((c = bl_cli_getopt("agent-key", argc, argv, opts)) != -1) {
        if (c == 'h') {
            fputs(bl_ak_help, stdout);
            return -1;
        }
        if (c == '?')
            return BL_EXIT_USAGE;
        if (c == O_DIR)
            o->dir = optarg;
        else if (o->nconns == BL_AGENTKEY_CONNS)
            return bl_cli_usage("agent-key", "more than %d connections", BL_AGENTKEY_CONNS);
        else
            o->conns[o->nconns++] = optarg;
    }
    if (o->dir == NULL)
        return bl_cli_usage("agent-key", "--dir DIR is required");
    if (argc - optind != want_name)
        return bl_cli_usage("agent-key", argc - optind > want_name ? "unexpected argument '%s'" : "expected an agent NAME%s",
                            argc - optind > want_name ? argv[optind + want_name] : "");
    if (want_name) {
        o->name = argv[optind];
        if (bl_identity_name_check(o->name, strlen(o->name), &why) != BL_OK)
            return bl_cli_usage("agent-key", "name \"%s\" %s", o->name, why);
    }
    return BL_EXIT_OK;
}

/* Loads DIR/agent-keys.yaml under an exclusive lock on DIR (*lock: the fd).
 * Returns BL_EXIT_OK or an exit status after printing. */
static int bl_ak_open(const char *dir, char *path, size_t cap, bl_agentkeys_t *keys, int *lock)
{
    bl_buf_t err;
    if (bl_file_pathf(path, cap, "%s/agent-keys.yaml", dir) != BL_OK)
        return bl_cli_fail("agent-key", "path too long");
    *lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*lock < 0 || flock(*lock, LOCK_EX) != 0)
        return bl_cli_fail("agent-key", "cannot lock %s: %s", dir, strerror(errno));
    bl_buf_init(&err, 64 * 1024);
    int rc = bl_agentkeys_load(path, keys, &err);
    if (rc != BL_OK)
        bl_cli_print(&err);
    bl_buf_free(&err);
    return rc == BL_OK ? BL_EXIT_OK : BL_EXIT_FAIL;
}

static int bl_ak_save(const char *path, const bl_agentkeys_t *keys)
{
    bl_buf_t err;
    bl_buf_init(&err, 4096);
    int rc = bl_agentkeys_write(path, keys, &err);
    bl_cli_print(&err);
    bl_buf_free(&err);
    return rc == BL_OK ? BL_EXIT_OK : BL_EXIT_FAIL;
}

/* Every named connection must be configured with via: agent. */
static int bl_ak_check_conns(const bl_akopt_t *o)
{
    bl_config_t *cfg = NULL;
    int rc = bl_cli_load("agent-key", o->dir, &cfg);
    for (size_t i = 0; rc == BL_EXIT_OK && i < o->nconns; i++) {
        const bl_connection_t *c = bl_config_connection(cfg, o->conns[i], strlen(o->conns[i]));
        if (c == NULL || !c->via_agent)
            rc = bl_cli_fail("agent-key", "connection \"%s\" is not configured in %s/byline.yaml with via: agent%s",
                             o->conns[i], o->dir, c ? "" : " (no such connection)");
    }
    bl_config_free(cfg);
    return rc;
}

/* Fills the new entry (name, connections, created, hash of `key`). */
static int bl_ak_entry(const bl_akopt_t *o, const char *key, bl_agentkey_t *k)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    k->name = strdup(o->name);
    k->created = strdup(ts);
    k->conns = calloc(o->nconns, sizeof(char *));
    for (size_t i = 0; k->conns && i < o->nconns; i++)
        if ((k->conns[k->nconns++] = strdup(o->conns[i])) == NULL)
            return BL_ERROR;
    if (k->name == NULL || k->created == NULL || k->conns == NULL)
        return BL_ERROR;
    return bl_token_hash(key, strlen(key), k->sha256);
}

static int bl_ak_add(int argc, char **argv)
{
    bl_akopt_t o = { 0 };
    bl_agentkeys_t keys = { 0 };
    char path[BL_PATH_MAX], key[BL_TOKEN_LEN + 1];
    int lock = -1, rc = bl_ak_args(argc, argv, &o, 1);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if (o.nconns == 0)
        return bl_cli_usage("agent-key", "--connection C is required (the connections this agent serves)");
    if ((rc = bl_ak_check_conns(&o)) != BL_EXIT_OK || (rc = bl_ak_open(o.dir, path, sizeof(path), &keys, &lock)) != BL_EXIT_OK)
        goto end;
    for (size_t i = 0; i < keys.n; i++)
        if (!strcmp(keys.keys[i].name, o.name)) {
            rc = bl_cli_fail("agent-key", "agent \"%s\" already has a key; remove it first", o.name);
            goto end;
        }
    bl_agentkey_t *grown = realloc(keys.keys, (keys.n + 1) * sizeof(*grown));
    if (grown == NULL) {
        rc = bl_cli_fail("agent-key", "out of memory");
        goto end;
    }
    keys.keys = grown;
    memset(&keys.keys[keys.n], 0, sizeof(keys.keys[0]));
    keys.n++;
    if (bl_agentkey_generate(key) != BL_OK || bl_ak_entry(&o, key, &keys.keys[keys.n - 1]) != BL_OK) {
        rc = bl_cli_fail("agent-key", "cannot generate a key");
        goto end;
    }
    if ((rc = bl_ak_save(path, &keys)) == BL_EXIT_OK)
        printf("%s\n", key);
end:
    OPENSSL_cleanse(key, sizeof(key));
    bl_agentkeys_free(&keys);
    if (lock >= 0)
        close(lock);
    return rc;
}

static int bl_ak_list(int argc, char **argv)
{
    bl_akopt_t o = { 0 };
    bl_agentkeys_t keys = { 0 };
    char path[BL_PATH_MAX];
    int lock = -1, rc = bl_ak_args(argc, argv, &o, 0);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if ((rc = bl_ak_open(o.dir, path, sizeof(path), &keys, &lock)) == BL_EXIT_OK) {
        printf("%-32s %-40s %s\n", "NAME", "CONNECTIONS", "CREATED");
        for (size_t i = 0; i < keys.n; i++) {
            char list[512] = "";
            size_t len = 0;
            for (size_t j = 0; j < keys.keys[i].nconns && len < sizeof(list); j++)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", j ? "," : "", keys.keys[i].conns[j]);
            printf("%-32s %-40s %s\n", keys.keys[i].name, list, keys.keys[i].created ? keys.keys[i].created : "-");
        }
    }
    bl_agentkeys_free(&keys);
    if (lock >= 0)
        close(lock);
    return rc;
}

static int bl_ak_remove(int argc, char **argv)
{
    bl_akopt_t o = { 0 };
    bl_agentkeys_t keys = { 0 };
    char path[BL_PATH_MAX];
    int lock = -1, rc = bl_ak_args(argc, argv, &o, 1);
    if (rc != BL_EXIT_OK)
        return rc < 0 ? BL_EXIT_OK : rc;
    if ((rc = bl_ak_open(o.dir, path, sizeof(path), &keys, &lock)) != BL_EXIT_OK)
        goto end;
    size_t i = 0;
    while (i < keys.n && strcmp(keys.keys[i].name, o.name) != 0)
        i++;
    if (i == keys.n) {
        rc = bl_cli_fail("agent-key", "no agent named \"%s\"", o.name);
        goto end;
    }
    bl_agentkey_t gone = keys.keys[i];
    memmove(&keys.keys[i], &keys.keys[i + 1], (keys.n - i - 1) * sizeof(gone));
    keys.keys[--keys.n] = gone; /* out of the file, still freed below */
    rc = bl_ak_save(path, &keys);
    keys.n++;
end:
    bl_agentkeys_free(&keys);
    if (lock >= 0)
        close(lock);
    return rc;
}

int bl_cmd_agent_key(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(bl_ak_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? BL_EXIT_USAGE : BL_EXIT_OK;
    }
    if (!strcmp(argv[1], "add"))
        return bl_ak_add(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list"))
        return bl_ak_list(argc - 1, argv + 1);
    if (!strcmp(argv[1], "remove"))
        return bl_ak_remove(argc - 1, argv + 1);
    return bl_cli_usage("agent-key", "unknown verb '%s' (add, list, remove)", argv[1]);
}

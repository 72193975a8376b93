/* audit_status.c - `byline audit status`: is the ledger healthy? */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "cli/audit.h"
#include "core/common.h"

static void bl_status_usage(FILE *f)
{
    fprintf(f, "usage: byline audit status --dir DIR [--json]\n\n"
               "Says whether the audit ledger is healthy: ok, failed (a write or fsync\n"
               "failed: every request is refused until byline is restarted) or refusing\n"
               "(free space below audit.space_refuse). Also the last checkpoint, free\n"
               "space and requests in flight, as the gateway last wrote them.\n"
               "Exits 0 when ok, 1 when failed, refusing or unknown.\n");
}

static int bl_status_print(json_t *s, int running, int as_json)
{
    const char *state = json_string_value(json_object_get(s, "state"));
    if (as_json) {
        json_object_set_new(s, "running", json_boolean(running));
        char *txt = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
    } else {
        const char *reason = json_string_value(json_object_get(s, "reason"));
        printf("state:       %s%s%s\n", state ? state : "unknown", reason && *reason ? ": " : "",
               reason ? reason : "");
        printf("gateway:     %s (pid %lld)\n", running ? "running" : "not running",
               (long long)json_integer_value(json_object_get(s, "pid")));
        printf("entries:     %lld in %lld segment(s); %lld signed in the last checkpoint\n",
               (long long)json_integer_value(json_object_get(s, "seq")),
               (long long)json_integer_value(json_object_get(s, "segment")),
               (long long)json_integer_value(json_object_get(s, "checkpoint_size")));
        printf("durability:  %s\n", json_is_true(json_object_get(s, "sync")) ? "fdatasync per group commit"
                                                                            : "RELAXED (no fdatasync)");
        printf("free space:  %.1f MiB (%lld%%)\n",
               (double)json_integer_value(json_object_get(s, "free_bytes")) / (1024.0 * 1024.0),
               (long long)json_integer_value(json_object_get(s, "free_pct")));
        printf("in flight:   %lld request(s)\n", (long long)json_integer_value(json_object_get(s, "open_intents")));
        printf("as of:       %s\n", json_string_value(json_object_get(s, "updated")));
    }
    return state && !strcmp(state, "ok") ? 0 : 1;
}

int bl_audit_status_cmd(int argc, char **argv)
{
    static const struct option opts[] = { { "dir", required_argument, NULL, 'd' },
                                          { "json", no_argument, NULL, 'j' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *dir = NULL;
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:jh", opts, NULL)) != -1) {
        if (c == 'd')
            dir = optarg;
        else if (c == 'j')
            as_json = 1;
        else if (c == 'h')
            return bl_status_usage(stdout), 0;
        else
            return bl_status_usage(stderr), 2;
    }
    if (dir == NULL || optind != argc) {
        fprintf(stderr, "byline audit status: %s\n", dir ? "unexpected argument" : "--dir is required");
        return 2;
    }
    char adir[4096], path[4200];
    if (bl_audit_dir_of(dir, adir, sizeof(adir)) != BL_OK)
        return 1;
    snprintf(path, sizeof(path), "%s/status.json", adir);
    json_error_t e;
    json_t *s = json_load_file(path, 0, &e);
    if (s == NULL) {
        fprintf(stderr, "byline audit status: no status in %s (has the gateway run?): %s\n", adir, e.text);
        return 1;
    }
    pid_t pid = (pid_t)json_integer_value(json_object_get(s, "pid"));
    int running = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
    int rc = bl_status_print(s, running, as_json);
    json_decref(s);
    return rc;
}

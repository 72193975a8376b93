/*
 * fuzz_join.c - libFuzzer target for `byline audit join`'s reading of the
 * cluster's audit log: the input is a cluster log (any shape, gzip or
 * plain) joined with a small fixed ledger (three requests whose ids the
 * corpus uses), and, cut at the first NUL or 64 bytes, a --since value.
 *
 * Besides crashes and sanitizer reports, the target aborts when:
 *   - the rows' kinds do not add up to the summary's counts, or a row has
 *     neither side, or the rows are out of time order;
 *   - a row or the summary does not render as JSON with its kind;
 *   - a time parsed as RFC 3339 (1970..9999) does not print and parse back
 *     to the same microsecond.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "audit/join.h"
#include "audit/when.h"

#define CHECK(x)                                                                       \
    do {                                                                               \
        if (!(x)) {                                                                    \
            fprintf(stderr, "fuzz_join: check failed at line %d: %s\n", __LINE__, #x); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static char dir[64];

/* Requests 01a22193-...-0001 (matched in the seeds), -0002 (lost unless the
 * input has it) and -0003 (refused by byline). */
static const char ledger[] =
    "{\"entry\":{\"action\":\"kubectl get pods -n web\",\"actor\":\"agent-a\",\"connection\":\"prod\","
    "\"credential\":\"token\",\"id\":\"01a22193-d8d4-7c43-afcf-000000000001\",\"kind\":\"intent\","
    "\"method\":\"GET\",\"request\":{\"namespace\":\"web\",\"resource\":\"pods\",\"verb\":\"list\"},"
    "\"ts\":\"2026-11-28T09:54:27.100000Z\"},\"prev\":\"x\",\"seq\":0}\n"
    "{\"entry\":{\"id\":\"01a22193-d8d4-7c43-afcf-000000000001\",\"kind\":\"result\",\"result\":\"allowed\","
    "\"status\":200,\"ts\":\"2026-11-28T09:54:27.100000Z\"},\"prev\":\"x\",\"seq\":1}\n"
    "{\"entry\":{\"action\":\"kubectl delete pod/api-0 -n web\",\"actor\":\"agent-a\",\"credential\":\"token\","
    "\"id\":\"01a22193-d8d4-7c43-afcf-000000000002\",\"kind\":\"intent\",\"method\":\"DELETE\",\"request\":"
    "{\"name\":\"api-0\",\"namespace\":\"web\",\"resource\":\"pods\",\"verb\":\"delete\"},"
    "\"ts\":\"2026-11-28T09:54:28.000000Z\"},\"prev\":\"x\",\"seq\":2}\n"
    "{\"entry\":{\"id\":\"01a22193-d8d4-7c43-afcf-000000000002\",\"kind\":\"result\",\"result\":\"allowed\","
    "\"status\":200,\"ts\":\"2026-11-28T09:54:28.000000Z\"},\"prev\":\"x\",\"seq\":3}\n"
    "{\"entry\":{\"actor\":null,\"credential\":\"none\",\"id\":\"01a22193-d8d4-7c43-afcf-000000000003\","
    "\"kind\":\"result\",\"method\":\"GET\",\"result\":\"unauthenticated\",\"status\":401,"
    "\"ts\":\"2026-11-28T09:54:29.000000Z\"},\"prev\":\"x\",\"seq\":4}\n";

static void cleanup(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/ledger-000001.jsonl", dir);
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[128];
    snprintf(dir, sizeof(dir), "/tmp/byline-fuzz-join-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/ledger-000001.jsonl", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fwrite(ledger, 1, sizeof(ledger) - 1, f) == sizeof(ledger) - 1);
    fclose(f);
    atexit(cleanup);
    return 0;
}

static void check_time(const uint8_t *data, size_t size)
{
    char s[65], out[48];
    size_t n = 0;
    int64_t t, back;
    while (n < size && n < 64 && data[n])
        n++;
    memcpy(s, data, n);
    s[n] = '\0';
    if (bl_when_parse(s, 0, &t) != BL_OK)
        return;
    if (t < 0 || t >= 253402300800ll * 1000000 || bl_when_duration(s, &back) == BL_OK)
        return;
    bl_join_format_time(t, 1, out, sizeof(out)); /* join's output reads back as its input */
    CHECK(bl_when_rfc3339(out, &back) == BL_OK);
    CHECK(back == t);
}

static void check_rows(const bl_join_t *j)
{
    const bl_join_row_t *rows;
    size_t n = bl_join_rows(j, &rows), kinds[BL_JOIN_NKINDS] = { 0 };
    const bl_join_summary_t *s = bl_join_summary(j);
    for (size_t i = 0; i < n; i++) {
        CHECK(rows[i].rec || rows[i].ev);
        CHECK(i == 0 || rows[i - 1].t_us <= rows[i].t_us);
        kinds[rows[i].kind]++;
        json_t *o = bl_join_row_json(&rows[i]);
        CHECK(o && !strcmp(json_string_value(json_object_get(o, "kind")), bl_join_kind_name(rows[i].kind)));
        char *txt = json_dumps(o, JSON_COMPACT);
        CHECK(txt != NULL);
        free(txt);
        json_decref(o);
    }
    for (int k = 0; k < BL_JOIN_NKINDS; k++)
        CHECK(kinds[k] == s->kinds[k]);
    json_t *sum = bl_join_summary_json(j);
    CHECK(sum && json_integer_value(json_object_get(sum, "flagged")) == (json_int_t)bl_join_nflagged(j));
    json_decref(sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bl_join_opts_t o = { BL_JOIN_NO_TIME, BL_JOIN_NO_TIME, 120 * 1000000ll, NULL, 0, 10000 };
    bl_buf_t err;
    int fd = memfd_create("cluster-log", 0);
    CHECK(fd >= 0);
    CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    check_time(data, size);
    bl_buf_init(&err, 4096);
    bl_join_t *j = bl_join_new(&o);
    CHECK(j != NULL);
    if (bl_join_read_cluster(j, fd, "fuzz", &err) == BL_OK && bl_join_read_ledger(j, dir, &err) == BL_OK &&
        bl_join_run(j) == BL_OK)
        check_rows(j);
    bl_join_free(j);
    bl_buf_free(&err);
    close(fd);
    return 0;
}

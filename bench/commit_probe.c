/*
 * commit_probe.c - what one group commit costs this disk, without byline:
 * append BYTES to a new file and fdatasync it, COUNT times, as the ledger
 * writer does per commit (src/audit/ledger.c, bl_ledger_write), in the
 * directory the ledger would use. The floor under byline's commit latency
 * and under the CPU its writer thread spends per commit (in the kernel:
 * page cache, block layer, and on a VM the exits to the hypervisor that
 * every I/O costs). In the spirit of PostgreSQL's pg_test_fsync.
 *
 *   commit_probe DIR [BYTES [COUNT]]      defaults 16384 bytes, 2000 commits
 *
 * Prints one JSON line: bytes, count, wall time per commit (p50, p90, p99,
 * mean, in microseconds) and CPU per commit (user + system, microseconds).
 * The file (DIR/.commit-probe.XXXXXX) is removed at the end.
 * Timing lives here, never in the unit tests.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PROBE_MAX_BYTES (16u << 20)
#define PROBE_MAX_COUNT 1000000

/* Returns the process's user + system CPU time in microseconds. */
static double probe_cpu_us(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
}

/* Returns the monotonic clock in microseconds. */
static double probe_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int probe_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fills `buf` with JSON-like lines of about the ledger's length. */
static void probe_fill(char *buf, size_t n)
{
    static const char line[] = "{\"entry\":{\"action\":\"kubectl get configmaps -n bench\",\"actor\":\"bench-agent\"},"
                               "\"prev\":\"Qdi7RTD5AcKyi1RZXRHgMbjYLruP24QdqOyyvQ8HNPs=\",\"seq\":98}\n";
    for (size_t i = 0; i < n; i++)
        buf[i] = line[i % (sizeof(line) - 1)];
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: commit_probe DIR [BYTES [COUNT]]\n");
        return 2;
    }
    long bytes = argc > 2 ? atol(argv[2]) : 16384, count = argc > 3 ? atol(argv[3]) : 2000;
    if (bytes < 1 || bytes > (long)PROBE_MAX_BYTES || count < 1 || count > PROBE_MAX_COUNT) {
        fprintf(stderr, "commit_probe: BYTES must be 1..%u and COUNT 1..%d\n", PROBE_MAX_BYTES, PROBE_MAX_COUNT);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/.commit-probe.XXXXXX", argv[1]);
    int fd = mkstemp(path);
    char *buf = malloc((size_t)bytes);
    double *lat = malloc((size_t)count * sizeof(*lat));
    int rc = 1;
    if (fd < 0 || buf == NULL || lat == NULL) {
        fprintf(stderr, "commit_probe: %s: %s\n", path, strerror(errno));
        goto done;
    }
    probe_fill(buf, (size_t)bytes);
    double cpu0 = probe_cpu_us(), start = probe_now_us();
    for (long i = 0; i < count; i++) {
        double t0 = probe_now_us();
        struct iovec iov = { buf, (size_t)bytes };
        if (writev(fd, &iov, 1) != bytes || fdatasync(fd) != 0) {
            fprintf(stderr, "commit_probe: writing %s: %s\n", path, strerror(errno));
            goto done;
        }
        lat[i] = probe_now_us() - t0;
    }
    double wall = probe_now_us() - start, cpu = probe_cpu_us() - cpu0;
    qsort(lat, (size_t)count, sizeof(*lat), probe_cmp);
    printf("{\"bytes\":%ld,\"count\":%ld,\"wall_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"mean\":%.1f},"
           "\"cpu_us\":%.1f}\n",
           bytes, count, lat[count / 2], lat[count * 9 / 10], lat[count * 99 / 100], wall / count, cpu / count);
    rc = 0;
done:
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(buf);
    free(lat);
    return rc;
}

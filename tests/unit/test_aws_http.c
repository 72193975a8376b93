/* test_aws_http.c - the blocking AWS HTTP client against canned responses
 * from a loopback server thread: Content-Length, chunked and close-delimited
 * bodies, the body bound, truncated and malformed responses, interim 100,
 * and the request it writes (Host, Content-Length, Connection: close). */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "aws/http.h"

typedef struct {
    int lfd;
    const char *reply;
    char request[4096];
} canned_t;

/* Accepts one connection, keeps the request head, writes the reply, closes. */
static void *serve_one(void *arg)
{
    canned_t *c = arg;
    int fd = accept(c->lfd, NULL, NULL);
    size_t n = 0;
    if (fd < 0)
        return NULL;
    while (n < sizeof(c->request) - 1) {
        ssize_t r = read(fd, c->request + n, sizeof(c->request) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        c->request[n] = '\0';
        if (strstr(c->request, "\r\n\r\n"))
            break;
    }
    if (write(fd, c->reply, strlen(c->reply)) < 0)
        n = 0;
    close(fd);
    return NULL;
}

/* Runs one request against `reply`. Returns bl_aws_http_do's code. */
static int run(const char *reply, const char *method, size_t max_body, bl_aws_http_resp_t *resp,
               canned_t *c, char *err, size_t errlen)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    char url[64];
    bl_aws_url_t u;
    pthread_t th;
    memset(c, 0, sizeof(*c));
    c->reply = reply;
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->lfd >= 0);
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(c->lfd, 1), 0);
    assert_int_equal(getsockname(c->lfd, (struct sockaddr *)&a, &al), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p?q=1", ntohs(a.sin_port));
    assert_int_equal(bl_aws_url_parse(url, &u, err, errlen), BL_OK);
    assert_int_equal(pthread_create(&th, NULL, serve_one, c), 0);
    bl_aws_http_header_t h = { "X-Test", "yes" };
    bl_aws_http_req_t rq = { .method = method, .url = &u, .headers = &h, .num_headers = 1,
                             .max_body = max_body };
    bl_aws_http_resp_init(resp);
    int rc = bl_aws_http_do(&rq, resp, err, errlen);
    pthread_join(th, NULL);
    close(c->lfd);
    return rc;
}

static void expect_body(const char *reply, int status, const char *body)
{
    canned_t c;
    bl_aws_http_resp_t r;
    char err[256] = "";
    int rc = run(reply, "GET", 0, &r, &c, err, sizeof(err));
    if (rc != BL_OK)
        print_error("error: %s\n", err);
    assert_int_equal(rc, BL_OK);
    assert_int_equal(r.status, status);
    assert_int_equal(bl_buf_size(&r.body), strlen(body));
    assert_memory_equal(bl_buf_data(&r.body), body, strlen(body));
    bl_aws_http_resp_free(&r);
}

static void expect_error(const char *reply, size_t max, const char *needle)
{
    canned_t c;
    bl_aws_http_resp_t r;
    char err[256] = "";
    assert_int_equal(run(reply, "GET", max, &r, &c, err, sizeof(err)), BL_ERROR);
    if (!strstr(err, needle))
        print_error("error %s lacks %s\n", err, needle);
    assert_non_null(strstr(err, needle));
    bl_aws_http_resp_free(&r);
}

static void test_framing(void **state)
{
    (void)state;
    expect_body("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello");
    expect_body("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 200, "hello");
    expect_body("HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n", 403, "abcdefg");
    expect_body("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", 200, "until the end");
    expect_body("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                200, "ok");
    expect_body("HTTP/1.1 204 No Content\r\n\r\n", 204, "");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 0, "cut short");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, "cut short");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 10, "larger than allowed");
    expect_error("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789ABCDEF", 10, "too large");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "bad");
    expect_error("garbage\r\n\r\n", 0, "malformed");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", 0,
                 "malformed");
    expect_error("", 0, "malformed");
}

static void test_request(void **state)
{
    (void)state;
    canned_t c;
    bl_aws_http_resp_t r;
    char err[256];
    assert_int_equal(run("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "PUT", 0, &r, &c, err,
                         sizeof(err)), BL_OK);
    assert_true(strncmp(c.request, "PUT /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:", 37) == 0);
    assert_non_null(strstr(c.request, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(c.request, "\r\nContent-Length: 0\r\n"));
    assert_non_null(strstr(c.request, "\r\nX-Test: yes\r\n"));
    bl_aws_http_resp_free(&r);
    assert_int_equal(run("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", 0, &r, &c, err,
                         sizeof(err)), BL_OK);
    assert_null(strstr(c.request, "Content-Length"));
    bl_aws_http_resp_free(&r);
}

static void test_refused(void **state)
{
    (void)state;
    bl_aws_url_t u;
    bl_aws_http_resp_t r;
    char err[256];
    assert_int_equal(bl_aws_url_parse("http://127.0.0.1:1/", &u, err, sizeof(err)), BL_OK);
    bl_aws_http_req_t rq = { .method = "GET", .url = &u };
    bl_aws_http_resp_init(&r);
    assert_int_equal(bl_aws_http_do(&rq, &r, err, sizeof(err)), BL_ERROR);
    assert_non_null(strstr(err, "cannot connect to 127.0.0.1:1"));
    bl_aws_http_header_t h = { "X-Bad", "a\r\nInjected: 1" };
    rq.headers = &h;
    rq.num_headers = 1;
    assert_int_equal(bl_aws_http_do(&rq, &r, err, sizeof(err)), BL_ERROR);
    assert_non_null(strstr(err, "CR/LF"));
    assert_null(strstr(err, "Injected"));
    bl_aws_http_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* uv_echo: the libuv baseline for benches/echo.rs (built only when libuv's
 * headers are installed: libuv1-dev).
 *
 * libuv's own echo-server example, as its guide writes it: uv_listen, a
 * uv_tcp_t per client, uv_read_start with a malloc'ed buffer of the
 * suggested size per read, one uv_write per read whose buffer is freed in
 * the write callback, uv_close + free on EOF or error. TCP_NODELAY set (as
 * sockflow and epoll_echo set it).
 *
 *   - line mode (the default) writes every complete `\n`-terminated line of
 *     a read with one uv_write and keeps a trailing partial line (at most
 *     64 KiB, longer closes the connection) for the next read;
 *   - --raw echoes every read whole.
 *
 * Like the guide's example it does not stop reading a client that does not
 * read its echoes (libuv queues the writes).
 *
 * usage: uv_echo [--raw] <port>      (port 0 = any free port; binds 0.0.0.0)
 * Prints "uv_echo: listening on 0.0.0.0 port N" to stderr when ready.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_LINE (64 * 1024)

struct client {
    uv_tcp_t tcp; /* first: the handle's address is the client's */
    char *part;   /* trailing partial line (line mode), NULL when none */
    size_t part_len;
};

struct write_req {
    uv_write_t req;
    char *base; /* freed when the write completes */
};

static uv_loop_t *loop;
static int raw;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_closed(uv_handle_t *h)
{
    struct client *c = (struct client *)h;
    free(c->part);
    free(c);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    uv_handle_t *h = (uv_handle_t *)req->handle;
    free(w->base);
    free(w);
    if (status < 0 && !uv_is_closing(h))
        uv_close(h, on_closed);
}

/* Writes `len` bytes of `base` (taking ownership of `base`); -1 on failure. */
static int echo(struct client *c, char *base, size_t len)
{
    struct write_req *w = malloc(sizeof *w);
    if (!w) {
        free(base);
        return -1;
    }
    w->base = base;
    uv_buf_t b = uv_buf_init(base, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        free(base);
        free(w);
        return -1;
    }
    return 0;
}

/* Line mode: the partial line plus this read's complete lines go out in
 * one write; the new trailing partial line is kept. -1 on failure. */
static int echo_lines(struct client *c, char *base, size_t n)
{
    const char *last = memrchr(base, '\n', n);
    if (!last) {
        if (c->part_len + n > MAX_LINE) {
            free(base);
            return -1;
        }
        char *p = realloc(c->part, c->part_len + n);
        if (!p) {
            free(base);
            return -1;
        }
        memcpy(p + c->part_len, base, n);
        c->part = p;
        c->part_len += n;
        free(base);
        return 0;
    }
    size_t whole = (size_t)(last - base) + 1;
    char *tail = NULL;
    size_t tail_len = n - whole;
    if (tail_len > 0) {
        tail = malloc(tail_len);
        if (!tail) {
            free(base);
            return -1;
        }
        memcpy(tail, base + whole, tail_len);
    }
    if (c->part_len > 0) {
        char *p = realloc(c->part, c->part_len + whole);
        if (!p) {
            free(base);
            free(tail);
            return -1;
        }
        memcpy(p + c->part_len, base, whole);
        free(base);
        base = p;
        whole += c->part_len;
    }
    c->part = tail;
    c->part_len = tail_len;
    return echo(c, base, whole);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = (struct client *)s;
    if (n > 0) {
        int rc = raw ? echo(c, buf->base, (size_t)n) : echo_lines(c, buf->base, (size_t)n);
        if (rc < 0 && !uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    free(buf->base);
    if (n < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0) {
        uv_tcp_nodelay(&c->tcp, 1);
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
}

int main(int argc, char **argv)
{
    raw = argc == 3 && strcmp(argv[1], "--raw") == 0;
    if (argc != 2 + raw) {
        fprintf(stderr, "usage: uv_echo [--raw] <port>\n");
        return 2;
    }
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in a;
    uv_ip4_addr("0.0.0.0", atoi(argv[argc - 1]), &a);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&a, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 128, on_connection);
    if (rc != 0) {
        fprintf(stderr, "uv_echo: bind/listen: %s\n", uv_strerror(rc));
        return 1;
    }
    int len = sizeof a;
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    fprintf(stderr, "uv_echo: listening on 0.0.0.0 port %d\n", ntohs(a.sin_port));
    fflush(stderr);
    return uv_run(loop, UV_RUN_DEFAULT);
}

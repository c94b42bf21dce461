/* epoll_echo: the hand-written baseline for benches/echo.rs.
 *
 * A single-threaded, level-triggered epoll line-echo server, written the way
 * a competent C programmer would write it without a library:
 *
 *   - non-blocking sockets, accept4() loop until EAGAIN, TCP_NODELAY on
 *     accepted sockets (as sockflow sets it);
 *   - one shared 64 KiB read buffer; every complete `\n`-terminated line of a
 *     read is echoed straight from it (all complete lines of one read in a
 *     single send()), only a trailing partial line is copied into the
 *     connection's own input buffer;
 *   - a per-connection output buffer only for what send() did not take,
 *     EPOLLOUT only while that buffer is non-empty, MSG_NOSIGNAL;
 *   - buffers are allocated when first needed and freed as soon as they are
 *     empty, so an idle connection costs one small struct in a table indexed
 *     by descriptor (this keeps the memory comparison honest);
 *   - a line longer than 64 KiB closes the connection; a client that does not
 *     read its echoes is not read any more once 1 MiB is queued for it.
 *
 * With --raw it echoes bytes as they come (no line framing), like sockflow's
 * echo_server with raw frames: every read is echoed whole.
 *
 * usage: epoll_echo [--raw] <port>      (port 0 = any free port; binds 0.0.0.0)
 * Prints "epoll_echo: listening on 0.0.0.0 port N" to stderr when ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_LINE (64 * 1024)
#define MAX_QUEUE (1024 * 1024)
#define MAX_EVENTS 1024

struct conn {
    char *in;      /* partial line, NULL when none */
    char *out;     /* unsent replies, NULL when none */
    uint32_t in_len, in_cap;
    uint32_t out_off, out_len, out_cap;
    uint8_t open;
    uint8_t want_out; /* EPOLLOUT registered */
    uint8_t paused;   /* EPOLLIN dropped: too much queued */
    uint8_t closing;  /* peer sent EOF: close once `out` is flushed */
};

static struct conn *conns; /* indexed by descriptor */
static size_t nconns;
static int ep;
static int raw; /* --raw: echo every read whole, no line framing */
static char rbuf[READ_BUF];

static int grow_table(int fd)
{
    if ((size_t)fd < nconns)
        return 0;
    size_t n = nconns ? nconns : 1024;
    while (n <= (size_t)fd)
        n *= 2;
    struct conn *t = realloc(conns, n * sizeof *t);
    if (!t)
        return -1;
    memset(t + nconns, 0, (n - nconns) * sizeof *t);
    conns = t;
    nconns = n;
    return 0;
}

static void close_conn(int fd)
{
    struct conn *c = &conns[fd];
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    close(fd); /* also removes it from the epoll set */
}

static void set_events(int fd)
{
    struct conn *c = &conns[fd];
    struct epoll_event ev = {0};
    ev.events = (c->paused || c->closing ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Appends to a lazily allocated buffer; -1 when out of memory. */
static int append(char **buf, uint32_t *len, uint32_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < *len + n)
            nc *= 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return -1;
        *buf = b;
        *cap = (uint32_t)nc;
    }
    memcpy(*buf + *len, p, n);
    *len += (uint32_t)n;
    return 0;
}

/* Sends what is queued; -1 if the connection failed. Frees the buffer when empty. */
static int flush_out(int fd)
{
    struct conn *c = &conns[fd];
    while (c->out_off < c->out_len) {
        ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->out_off += (uint32_t)n;
    }
    int changed = 0;
    if (c->out_off == c->out_len) {
        if (c->closing)
            return -1; /* everything echoed: now close */
        free(c->out);
        c->out = NULL;
        c->out_off = c->out_len = c->out_cap = 0;
        if (c->want_out) {
            c->want_out = 0;
            changed = 1;
        }
        if (c->paused) {
            c->paused = 0;
            changed = 1;
        }
    } else if (!c->want_out) {
        c->want_out = 1;
        changed = 1;
    }
    if (changed)
        set_events(fd);
    return 0;
}

/* Echoes `n` bytes of complete lines: straight to the socket when nothing is
 * queued, the rest into the out buffer. -1 if the connection failed. */
static int echo(int fd, const char *p, size_t n)
{
    struct conn *c = &conns[fd];
    if (c->out_len == 0) {
        while (n > 0) {
            ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                return -1;
            }
            p += w;
            n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (append(&c->out, &c->out_len, &c->out_cap, p, n) < 0)
        return -1;
    if (!c->want_out) {
        c->want_out = 1;
        if (c->out_len - c->out_off > MAX_QUEUE)
            c->paused = 1;
        set_events(fd);
    } else if (!c->paused && c->out_len - c->out_off > MAX_QUEUE) {
        c->paused = 1;
        set_events(fd);
    }
    return 0;
}

/* One read (level-triggered: epoll reports the socket again if more is
 * waiting). -1 when the connection is to be closed. */
static int on_readable(int fd)
{
    struct conn *c = &conns[fd];
    ssize_t r;
    do
        r = read(fd, rbuf, sizeof rbuf);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    if (r == 0) {
        if (c->out_off == c->out_len)
            return -1;
        c->closing = 1; /* echo what is queued first */
        set_events(fd);
        return 0;
    }
    if (raw)
        return echo(fd, rbuf, (size_t)r);
    const char *p = rbuf;
    size_t n = (size_t)r;
    if (c->in_len > 0) {
        /* Finish the partial line first. */
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) + 1 : n;
        if (c->in_len + take > MAX_LINE + 1)
            return -1;
        if (append(&c->in, &c->in_len, &c->in_cap, p, take) < 0)
            return -1;
        p += take;
        n -= take;
        if (!nl)
            return 0;
        int rc = echo(fd, c->in, c->in_len);
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        if (rc < 0)
            return -1;
    }
    if (n == 0)
        return 0;
    const char *last = memrchr(p, '\n', n);
    size_t whole = last ? (size_t)(last - p) + 1 : 0;
    if (whole > 0 && echo(fd, p, whole) < 0)
        return -1;
    if (n - whole > MAX_LINE + 1)
        return -1;
    if (n > whole && append(&c->in, &c->in_len, &c->in_cap, p + whole, n - whole) < 0)
        return -1;
    return 0;
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("epoll_echo: accept4");
            return;
        }
        if (grow_table(fd) < 0) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {0};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            continue;
        }
        conns[fd].open = 1;
    }
}

int main(int argc, char **argv)
{
    raw = argc == 3 && strcmp(argv[1], "--raw") == 0;
    if (argc != 2 + raw) {
        fprintf(stderr, "usage: epoll_echo [--raw] <port>\n");
        return 2;
    }
    int port = atoi(argv[argc - 1]);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 128) < 0) {
        perror("epoll_echo: bind/listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("epoll_echo: epoll");
        return 1;
    }
    fprintf(stderr, "epoll_echo: listening on 0.0.0.0 port %d\n", ntohs(a.sin_port));
    fflush(stderr);

    static struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_echo: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            uint32_t e = evs[i].events;
            if (fd == lfd) {
                accept_all(lfd);
                continue;
            }
            if (!conns[fd].open)
                continue;
            if ((e & EPOLLOUT) && flush_out(fd) < 0) {
                close_conn(fd);
                continue;
            }
            if (conns[fd].closing) {
                if (e & (EPOLLERR | EPOLLHUP))
                    close_conn(fd);
                continue;
            }
            if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && on_readable(fd) < 0)
                close_conn(fd);
        }
    }
}

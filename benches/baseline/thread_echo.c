/* thread_echo: the thread-per-connection baseline for benches/echo.rs.
 *
 * The style of the socket tutorials: a blocking accept() loop that starts
 * one detached thread per client; the thread reads into a buffer on its
 * stack and writes back with blocking calls until the client closes. No
 * event loop, no non-blocking sockets, default thread stacks (8 MiB of
 * address space, of which only the touched pages count in RSS).
 *
 *   - TCP_NODELAY on accepted sockets (as sockflow and epoll_echo set it),
 *     MSG_NOSIGNAL on every send, EINTR retried, partial sends completed;
 *   - line mode (the default) echoes every complete `\n`-terminated line of
 *     a read with one send and keeps a trailing partial line (at most
 *     64 KiB, longer closes the connection) for the next read;
 *   - --raw echoes every read whole.
 *
 * usage: thread_echo [--raw] <port>      (port 0 = any free port; binds 0.0.0.0)
 * Prints "thread_echo: listening on 0.0.0.0 port N" to stderr when ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (16 * 1024)
#define MAX_LINE (64 * 1024)

static int raw;

/* Sends all of p; -1 when the connection failed. */
static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[BUF];
    char *part = NULL; /* trailing partial line (line mode), NULL when none */
    size_t part_len = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (raw) {
            if (send_all(fd, buf, (size_t)r) < 0)
                break;
            continue;
        }
        const char *last = memrchr(buf, '\n', (size_t)r);
        if (!last) {
            if (part_len + (size_t)r > MAX_LINE)
                break;
            char *np = realloc(part, part_len + (size_t)r);
            if (!np)
                break;
            part = np;
            memcpy(part + part_len, buf, (size_t)r);
            part_len += (size_t)r;
            continue;
        }
        size_t whole = (size_t)(last - buf) + 1;
        if (part_len > 0) {
            /* The partial line first, then the rest of the lines. */
            if (send_all(fd, part, part_len) < 0)
                break;
            free(part);
            part = NULL;
            part_len = 0;
        }
        if (send_all(fd, buf, whole) < 0)
            break;
        if ((size_t)r > whole) {
            part_len = (size_t)r - whole;
            part = malloc(part_len);
            if (!part)
                break;
            memcpy(part, buf + whole, part_len);
        }
    }
    free(part);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    raw = argc == 3 && strcmp(argv[1], "--raw") == 0;
    if (argc != 2 + raw) {
        fprintf(stderr, "usage: thread_echo [--raw] <port>\n");
        return 2;
    }
    int port = atoi(argv[argc - 1]);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)port);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 128) < 0) {
        perror("thread_echo: bind/listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    fprintf(stderr, "thread_echo: listening on 0.0.0.0 port %d\n", ntohs(a.sin_port));
    fflush(stderr);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("thread_echo: accept4");
            sleep(1); /* out of descriptors: do not spin */
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) {
            perror("thread_echo: pthread_create");
            close(fd);
        }
    }
}

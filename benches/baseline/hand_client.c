/* hand_client: what c_examples/tcp_client.c does, written by hand, for the
 * stdin-client scenario of benches/echo.rs.
 *
 * The same flow as sockflow_tcp_client_run with line frames: connect, then
 * one poll() loop over stdin and the socket; stdin is read in 64 KiB
 * chunks, its lines are queued and sent (non-blocking sends, partial sends
 * kept), replies are written to stdout as they come; at the end of stdin
 * the queue is sent and the socket half-closed (shutdown SHUT_WR), and the
 * client ends when the server closes. stdin is not read while the queue is
 * non-empty, so memory stays bounded. MSG_NOSIGNAL, EINTR retried.
 *
 * usage: hand_client <host> <port>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "hand_client: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        perror("hand_client: connect");
    return fd;
}

/* Writes all of p to stdout; -1 on failure. */
static int out_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(1, p, n);
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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hand_client <host> <port>\n");
        return 2;
    }
    int fd = connect_to(argv[1], argv[2]);
    if (fd < 0)
        return 1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    static char in[CHUNK], net[CHUNK];
    size_t q_off = 0, q_len = 0; /* queued input not yet sent: in[q_off..q_len] */
    int input_open = 1;
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN | (q_off < q_len ? POLLOUT : 0), 0}, {0, POLLIN, 0}};
        int reading_input = input_open && q_off == q_len;
        if (poll(p, reading_input ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("hand_client: poll");
            return 1;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, net, sizeof net, MSG_DONTWAIT);
            if (r == 0)
                return 0; /* the server closed: every reply was printed */
            if (r < 0 && errno != EAGAIN && errno != EINTR) {
                perror("hand_client: recv");
                return 1;
            }
            if (r > 0 && out_all(net, (size_t)r) < 0)
                return 1;
        }
        if (q_off < q_len && (p[0].revents & POLLOUT)) {
            ssize_t w = send(fd, in + q_off, q_len - q_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                perror("hand_client: send");
                return 1;
            }
            if (w > 0)
                q_off += (size_t)w;
            if (q_off == q_len && !input_open)
                shutdown(fd, SHUT_WR);
        }
        if (reading_input && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(0, in, sizeof in);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                input_open = 0;
                shutdown(fd, SHUT_WR);
                continue;
            }
            q_off = 0;
            q_len = (size_t)r;
        }
    }
}

/* udp_echo: the hand-written UDP baseline for benches/echo.rs.
 *
 * The loop every UDP tutorial writes: one blocking socket, recvfrom() a
 * datagram, sendto() it back to its sender, forever. EINTR retried; a
 * failed send is ignored (UDP has no connection to lose).
 *
 * usage: udp_echo <port>      (port 0 = any free port; binds 0.0.0.0)
 * Prints "udp_echo: listening on 0.0.0.0 port N" to stderr when ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: udp_echo <port>\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t)atoi(argv[1]));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("udp_echo: bind");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    fprintf(stderr, "udp_echo: listening on 0.0.0.0 port %d\n", ntohs(a.sin_port));
    fflush(stderr);

    static char buf[65536];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno != EINTR)
                perror("udp_echo: recvfrom");
            continue;
        }
        while (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl) < 0 && errno == EINTR) {
        }
    }
}

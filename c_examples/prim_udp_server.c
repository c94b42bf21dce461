/*
 * prim_udp_server: a UDP echo server on sockflow's primitives.
 *
 *     ./prim_udp_server [options] [host] <port>      (port 0 = any free port)
 *
 * Binds, prints "prim_udp_server: listening on HOST port N" to stderr, then
 * echoes every datagram back to its sender, printing who sent what, until a
 * datagram holds the quit word ("quit", or --quit WORD). With --frame
 * fixed:N datagrams are N-byte NUL-padded strings (the tutorials' char[32]).
 */
#include <stdio.h>
#include <string.h>

#include "sockflow.h"

int main(int argc, char **argv)
{
    static char msg[65536]; /* any datagram (at most 65527 bytes, over IPv6) and a NUL */
    sockflow_args a;
    sockflow_udp *sock = NULL;
    sockflow_addr from;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = sockflow_args_parse(&a, argc, argv, SOCKFLOW_ROLE_SERVER)) != 0)
        return sockflow_exit_code(rc);
    if ((rc = sockflow_udp_bind_args(&a, &sock)) != 0)
        return sockflow_perror(a.prog, rc);
    fprintf(stderr, "%s: listening on %s port %d\n", a.prog, a.host, sockflow_udp_port(sock));

    for (;;) {
        ssize_t n = sockflow_udp_recv_from(sock, msg, sizeof msg, &from);
        if (n == SOCKFLOW_EMSGSIZE) { /* one bad datagram does not stop a server */
            (void)sockflow_perror(a.prog, (int)n);
            continue;
        }
        if (n >= 0)
            printf("client ip = %s port = %d: %s\n", from.ip, from.port, msg);
        rc = n < 0 ? (int)n : sockflow_udp_send_to(sock, msg, (size_t)n, from.ip, from.port);
        if (rc != 0 || (a.quit[0] != '\0' && strcmp(msg, a.quit) == 0))
            break;
    }
    sockflow_udp_close(sock);
    return rc != 0 ? sockflow_perror(a.prog, rc) : 0;
}

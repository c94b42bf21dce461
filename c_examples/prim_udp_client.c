/*
 * prim_udp_client: sends each line of stdin as a datagram to a UDP echo
 * server and prints the reply, using sockflow's primitives.
 *
 *     ./prim_udp_client [options] <host> <port>
 *
 * Waits --timeout MS (default 2000) for each reply. Stops after sending the
 * quit word ("quit", or --quit WORD) or at end of input.
 */
#include <stdio.h>
#include <string.h>

#include "sockflow.h"

int main(int argc, char **argv)
{
    static char line[65536 + 2];  /* a line, its newline and a NUL */
    static char reply[65536];     /* any datagram (at most 65527 bytes, over IPv6) and a NUL */
    sockflow_args a;
    sockflow_udp *sock = NULL;
    ssize_t n;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = sockflow_args_parse(&a, argc, argv, SOCKFLOW_ROLE_CLIENT)) != 0)
        return sockflow_exit_code(rc);
    if ((rc = sockflow_udp_connect_args(&a, &sock)) != 0)
        return sockflow_perror(a.prog, rc);
    n = sockflow_udp_set_timeouts(sock, a.timeout_ms > 0 ? a.timeout_ms : 2000, SOCKFLOW_FOREVER); /* < 0: no line is read */

    while (n >= 0 && fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        len -= len > 0 && line[len - 1] == '\n'; /* a line ends in "\n" or "\r\n" */
        len -= len > 0 && line[len - 1] == '\r';
        line[len] = '\0';
        if ((n = sockflow_udp_send(sock, line, len)) != 0
            || (n = sockflow_udp_recv_from(sock, reply, sizeof reply, NULL)) < 0)
            break;
        printf("echo: %s\n", reply);
        if (a.quit[0] != '\0' && strcmp(line, a.quit) == 0)
            break;
    }
    sockflow_udp_close(sock);
    return n < 0 ? sockflow_perror(a.prog, (int)n) : 0;
}

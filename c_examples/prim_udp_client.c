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
    static char line[65536 + 2];
    static char reply[65536];
    sockflow_args a;
    sockflow_udp *sock = NULL;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = sockflow_args_parse(&a, argc, argv, SOCKFLOW_ROLE_CLIENT);
    if (rc != 0)
        return sockflow_exit_code(rc);

    rc = sockflow_udp_connect_args(&a, &sock);
    if (rc == 0)
        rc = sockflow_udp_set_timeout(sock, a.timeout_ms > 0 ? a.timeout_ms : 2000);
    if (rc != 0) {
        sockflow_udp_close(sock);
        return sockflow_perror(a.prog, rc);
    }

    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        ssize_t n;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';

        rc = sockflow_udp_send(sock, line, len);
        if (rc != 0) {
            rc = sockflow_perror(a.prog, rc);
            break;
        }
        n = sockflow_udp_recvfrom(sock, reply, sizeof reply - 1, NULL);
        if (n < 0) {
            rc = sockflow_perror(a.prog, (int)n);
            break;
        }
        reply[n] = '\0';
        printf("echo: %s\n", reply);
        if (a.quit[0] != '\0' && strcmp(line, a.quit) == 0)
            break;
    }
    sockflow_udp_close(sock);
    return rc;
}
